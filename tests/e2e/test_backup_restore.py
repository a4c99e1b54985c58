"""A platform backed up and restored onto a fresh install (an empty data dir, a new PostgreSQL
database) carries on: the instance deployed before the backup starts again through the process
runtime, its gateway polls the (loopback fake) Bot API with the restored bot token, and the
model gateway sends the restored provider key with the calls it forwards."""

from __future__ import annotations

import asyncio

import pytest

from clawfleet.settings import Settings
from db.keyfile import key_file, read_key_file
from tests.support.api_client import Api, migrated, running_api
from tests.support.cli import clawfleet_env, run_clawfleet
from tests.support.model_calls import model_calls
from tests.support.process_gateways import fakes, process_settings  # noqa: F401 (fixtures)
from tests.support.services import empty_database

OPENAI_KEY = "sk-proj-restoreE2eRestoreE2e0123456789"
PASSPHRASE = "an operator's long backup passphrase"
OWNER = ("owner@example.com", "correct horse battery")


@pytest.fixture
def old_settings(tmp_path, openclaw_install, fakes) -> Settings:
    return process_settings(tmp_path / "old", openclaw_install, *fakes)


async def _stop_all(api: Api) -> None:
    runtime = api.platform.runtime
    for found in await runtime.list_all():
        await runtime.stop(found.instance_id, found.info, timeout=5)


async def test_a_restored_platform_deploys_with_the_secrets_sealed_before_the_backup(
        tmp_path, openclaw_install, fakes, old_settings) -> None:
    telegram, model = fakes
    bot = telegram.add_bot(username="restored_assistant_bot")
    await migrated(old_settings)
    async with running_api(old_settings) as api:
        try:
            await api.sign_up(OWNER[0])
            status, created = await api.call("POST", "/api/instances", {
                "model_provider": "openai", "api_key": OPENAI_KEY,
                "telegram_bot_token": bot.token, "telegram_user_id": 424242})
            assert status == 202, created
            assert (await api.progress(created["id"]))[-1]["done"]
            assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
            assert (await api.progress(created["id"]))[-1]["done"]
        finally:
            await _stop_all(api)

    backup = tmp_path / "platform.backup"
    made = run_clawfleet(clawfleet_env(old_settings.data_dir, old_settings.database_url,
                                       backup_passphrase=PASSPHRASE), "backup", "--output", str(backup), cwd=tmp_path)
    assert made.returncode == 0, made.stderr

    async with empty_database("postgresql", tmp_path) as url:
        new_settings = process_settings(tmp_path / "new", openclaw_install, *fakes, database_url=url)
        assert not new_settings.data_dir.exists()
        restored = run_clawfleet(clawfleet_env(new_settings.data_dir, url, backup_passphrase=PASSPHRASE),
                                 "restore", str(backup), cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert read_key_file(key_file(new_settings.data_dir)) == read_key_file(key_file(old_settings.data_dir))

        async with running_api(new_settings) as api:
            try:
                status, body = await api.call("POST", "/api/auth/login", {"email": OWNER[0], "password": OWNER[1]})
                assert status == 200, body
                api.token = body["token"]
                polls_before = len(bot.calls_to("getUpdates"))
                assert (await api.call("POST", f"/api/instances/{created['id']}/start"))[0] == 202
                events = await api.progress(created["id"])
                assert events[-1]["done"], events
                await _polled_again(bot, polls_before)  # the restored bot token reached the gateway

                answers = await model_calls(api.platform, created["id"])
                assert answers and model.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"
            finally:
                await _stop_all(api)


async def _polled_again(bot, before: int, timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
        while len(bot.calls_to("getUpdates")) <= before:
            await asyncio.sleep(0.5)

