"""Linking a Telegram account to a web account and signing in from chat, through the real
python-telegram-bot application against the fake Bot API (in-memory runtime), SQLite and
PostgreSQL both: the dashboard's code and deep link, the bot's answers, the account they change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from sqlalchemy import select

from accounts.users import Accounts
from clawfleet.platform import PLATFORM
from db.errors import AuthenticationFailed
from db.models import AccessRefusal, Instance, User
from db.status import Status
from tests.support.api_client import Api
from tests.support.bot_chat import Chat, buttons, running_platform
from tests.support.builders import new_instance
from tests.support.smtp import link_in, token_of  # noqa: F401

PASSWORD = "correct horse battery"


@asynccontextmanager
async def api_of(server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        api.token = (await Accounts(server.app[PLATFORM].sessions).login("ada@example.com", PASSWORD)).token
        yield api


async def _users(sessions) -> list[User]:
    async with sessions() as session:
        return list(await session.scalars(select(User)))


async def _code(api: Api) -> dict:
    status, body = await api.call("POST", "/api/me/telegram-link")
    assert status == 201, body
    return body


async def test_dashboard_hands_out_a_login_link_that_works_once(platform, chat, clawfleet_bot, settings) -> None:
    await chat.send("/dashboard")
    reply = await chat.reply("login link to the dashboard")
    assert "works once, within 10 minutes" in reply["text"]
    [(url, label)] = buttons(reply).items()
    assert label == "Open the dashboard" and url.startswith(f"{settings.public_url}/login/link?token=cf_link_")

    links = platform.app[PLATFORM].login_links
    user = await links.redeem(token_of(url))
    assert user.telegram_user_id == chat.user.id  # the sender's own account
    with pytest.raises(AuthenticationFailed, match="used already"):
        await links.redeem(token_of(url))

    await chat.send("/help")
    assert "/dashboard" in (await chat.reply("What I can do"))["text"]
    assert {"dashboard", "link"} <= {command["command"] for command in clawfleet_bot.commands()}


async def test_the_deep_link_links_someone_the_allowlist_keeps_out(settings, sessions, runtime, telegram,
                                                                   clawfleet_bot) -> None:
    allowlist = settings.model_copy(update={"access": "allowlist", "allowed_emails": ["ada@example.com"]})
    ada, _ = await Accounts(sessions).register("ada@example.com", PASSWORD)
    async with running_platform(allowlist, runtime) as server, api_of(server) as api:
        code = await _code(api)
        assert code["deep_link"] == f"https://t.me/clawfleet_bot?start={code['code']}"
        stranger = Chat(clawfleet_bot, telegram.user(first_name="Ada", username="ada_tg"))
        sent = await stranger.send(f"/start {code['code']}")  # what the deep link sends
        linked = await stranger.reply("Linked")
        assert linked["text"] == "Linked: this Telegram account now signs in to ada@example.com."
        assert clawfleet_bot.deleted(stranger.user.id, sent["message_id"])  # the code is gone from the chat
        assert "Welcome" not in stranger.transcript()  # a link, not a setup

        found = await server.app[PLATFORM].accounts.find_telegram_user(stranger.user.id)
        assert (found.id, found.telegram_chat_id, found.telegram_username) == (ada.id, stranger.user.id, "ada_tg")
        await stranger.send("/status")  # in through the web account now
        await stranger.reply("You have no assistant yet")
    assert [user.id for user in await _users(sessions)] == [ada.id]
    async with sessions() as session:
        assert list(await session.scalars(select(AccessRefusal))) == []


async def test_an_empty_telegram_account_merges_and_one_with_an_assistant_is_refused(
        platform, chat, sessions) -> None:
    ada, _ = await Accounts(sessions).register("ada@example.com", PASSWORD)
    await chat.send("/help")  # a Telegram-only account of its own, at first contact
    await chat.reply("What I can do")
    [telegram_only] = [user for user in await _users(sessions) if user.email is None]
    async with sessions() as session:
        session.add(new_instance(platform.app[PLATFORM].keyring, telegram_only, status=Status.STOPPED))
        await session.commit()

    async with api_of(platform) as api:
        code = (await _code(api))["code"]
        await chat.send(f"/link {code}")
        refused = await chat.reply("already has an assistant of its own")
        assert "ada@example.com" in refused["text"] and "/delete" in refused["text"]
        assert len(await _users(sessions)) == 2  # nothing merged, nothing changed

        async with sessions() as session:
            await session.delete(await session.scalar(select(Instance)))
            await session.commit()
        await chat.send(f"/link {code.upper()}")  # the refused code still holds; typed in capitals
        await chat.reply("Linked: this Telegram account now signs in to ada@example.com")
    [merged] = await _users(sessions)
    assert (merged.id, merged.telegram_user_id) == (ada.id, chat.user.id)


async def test_wrong_used_and_expired_codes_are_refused_then_throttled(platform, chat, sessions) -> None:
    await Accounts(sessions).register("ada@example.com", PASSWORD)
    async with api_of(platform) as api:
        code = (await _code(api))["code"]
        await chat.send(f"/link {code}")
        await chat.reply("Linked")
        await chat.send(f"/link {code}")  # used already
        await chat.reply("That link code is not valid: it may be mistyped, used already or expired.")
        await chat.send("/link")
        await chat.reply("Send /link followed by the code")
        for _ in range(4):  # five wrong in all: the budget
            await chat.send("/link link-abcdefghjk")
            await chat.reply("That link code is not valid")
        fresh = (await _code(api))["code"]
        await chat.send(f"/start {fresh}")  # even a right code waits once the budget is spent
        await chat.reply("Too many wrong codes. Please wait a while and try again.")
    assert chat.transcript().count("Linked") == 1


async def test_a_reset_link_goes_by_the_bot_without_mail(platform, chat, sessions) -> None:
    await Accounts(sessions).register("ada@example.com", PASSWORD)
    async with api_of(platform) as api:
        await chat.send(f"/link {(await _code(api))['code']}")
        await chat.reply("Linked")
        status, _ = await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-")
        assert status == 202
        sent = await chat.reply("choose a new password")
        token = token_of(next(word for word in sent["text"].split() if "?token=" in word))
        reset = {"token": token, "password": "a brand new password"}
        assert (await api.call("POST", "/api/auth/password-reset/confirm", reset, token="-"))[0] == 204
        status, _ = await api.call("POST", "/api/auth/login", {"email": "ada@example.com",
                                                               "password": "a brand new password"}, token="-")
        assert status == 200
        assert (await api.call("GET", "/api/instances"))[0] == 401  # the reset signed every session out
        # an email proof never goes by the bot: only a mail to the address proves it
        api.token = (await Accounts(platform.app[PLATFORM].sessions).login("ada@example.com",
                                                                           "a brand new password")).token
        status, body = await api.call("POST", "/api/me/email-proof")
        assert status == 409 and "Ask its operator" in body["error"]["message"]
