"""Invite codes for CLAWFLEET_ACCESS=invite: made by the CLI, redeemed once through the bot."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from accounts.invites import Invites
from db.errors import InvalidInput
from db.models import Invite
from tests.support.bot_chat import Chat, running_platform
from tests.support.builders import saved_user


async def test_a_code_lets_one_person_in_once(sessions) -> None:
    invites = Invites(sessions)
    codes = await invites.create(3, None)
    assert len(set(codes)) == 3 and all(code.startswith("inv-") for code in codes)
    async with sessions() as session:
        stored = [row.code_hash for row in await session.scalars(select(Invite))]
    assert not set(codes) & set(stored)  # hashes only

    ada, bob = await saved_user(sessions), await saved_user(sessions)
    assert not await invites.is_invited(ada)
    await invites.redeem(ada, f"  {codes[0]} ")
    assert await invites.is_invited(ada)
    with pytest.raises(InvalidInput, match="used already"):
        await invites.redeem(bob, codes[0])
    with pytest.raises(InvalidInput):
        await invites.redeem(bob, "inv-made-up")
    assert not await invites.is_invited(bob)


async def test_an_expired_code_is_refused(sessions) -> None:
    invites = Invites(sessions)
    [code] = await invites.create(1, timedelta(seconds=-1))
    with pytest.raises(InvalidInput, match="expired"):
        await invites.redeem(await saved_user(sessions), code)


async def test_the_bot_redeems_an_invite_from_a_start_link(settings, sessions, runtime, telegram,
                                                          clawfleet_bot) -> None:
    [code] = await Invites(sessions).create(1, None)
    async with running_platform(settings.model_copy(update={"access": "invite"}), runtime):
        stranger = Chat(clawfleet_bot, telegram.user(first_name="Stranger"))
        await stranger.send("/start")
        refusal = await stranger.reply("invite-only")
        assert "Send /start followed by the code" in refusal["text"]
        await stranger.send("/start inv-wrong")
        await stranger.reply("That invite code is not valid")

        await stranger.send(f"/start {code}")
        await stranger.reply("Invite accepted")
        await stranger.reply("Welcome to ClawFleet")

        other = Chat(clawfleet_bot, telegram.user(first_name="Other"))
        await other.send(f"/start {code}")
        await other.reply("used already")


def test_the_cli_prints_new_codes_and_checks_its_arguments(tmp_path) -> None:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_ACCESS": "invite"}
    env.pop("CLAWFLEET_DATABASE_URL", None)

    def clawfleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert clawfleet("migrate").returncode == 0
    made = clawfleet("invites", "create", "--count", "2", "--days", "7")
    assert made.returncode == 0, made.stderr
    codes = made.stdout.split()
    assert len(codes) == 2 and all(code.startswith("inv-") for code in codes)
    refused = clawfleet("invites", "create", "--count", "0")
    assert refused.returncode == 1 and "--count must be between 1 and 1000" in refused.stderr


async def test_an_api_account_redeems_an_invite_and_may_then_deploy(settings, sessions) -> None:
    from tests.support.api_client import running_api
    from tests.support.memory_runtime import MemoryRuntime

    [code] = await Invites(sessions).create(1, None)
    runtime = MemoryRuntime()
    async with running_api(settings.model_copy(update={"access": "invite"}), runtime) as api:
        await api.sign_up()
        body = {"model_provider": "openai", "api_key": "sk-proj-inviteINVITE0123456789abcdef"}
        status, refused = await api.call("POST", "/api/instances", body)
        assert status == 403 and "invite-only" in refused["error"]["message"]
        status, bad = await api.call("POST", "/api/auth/invite", {"code": "inv-nope"})
        assert status == 400 and bad["error"]["field"] == "invite"
        assert (await api.call("POST", "/api/auth/invite", {"code": code}))[0] == 204
        status, created = await api.call("POST", "/api/instances", body)
        assert status == 202, created
    await runtime.close()
