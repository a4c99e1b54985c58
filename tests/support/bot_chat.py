"""The whole platform with its provisioning bot, on loopback, and a person chatting with it
through the fake Bot API: what tests of the bot drive."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestServer

from clawfleet.platform import build_app
from clawfleet.settings import Settings
from provisioner.providers import get_provider
from provisioner.runtimes.base import Runtime
from tests.fakes.telegram import FakeBot, FakeUser
from tests.support.api_client import close_platform


@asynccontextmanager
async def running_platform(settings: Settings, runtime: Runtime | None = None,
                           port: int | None = None) -> AsyncIterator[TestServer]:
    """`clawfleet serve`'s app (web, provisioner, bot) on 127.0.0.1, stopped gracefully."""
    app = await build_app(settings, runtime=runtime)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield server
    finally:
        await close_platform(server)


class Chat:
    """One person's private chat with a bot of the fake Bot API."""

    def __init__(self, bot: FakeBot, user: FakeUser) -> None:
        self.bot = bot
        self.user = user

    async def send(self, text: str) -> dict:
        return await self.bot.user_sends(self.user, text)

    async def press(self, message: dict, callback_data: str, *, offered: bool = True) -> dict:
        """Tap a button of `message` (`offered=False`: one an earlier release put there); the query."""
        return await self.bot.user_presses(self.user, message, callback_data, offered=offered)

    async def reply(self, contains: str | Callable[[dict], bool] | None = None, timeout: float = 10) -> dict:
        """The next new message or edit from the bot (matching, when asked)."""
        if isinstance(contains, str):
            text = contains
            contains = lambda message: text in message.get("text", message.get("caption", ""))  # noqa: E731
        return await self.bot.wait_for_message(self.user.id, contains, timeout=timeout)

    def transcript(self) -> str:
        """Everything either side says now (after edits and deletions), for assertions and failures."""
        return "\n".join(message.get("text", message.get("caption", "")) for message in self.bot.messages(self.user.id))


def buttons(message: dict) -> dict[str, str]:
    """A message's inline buttons: callback data (or URL) -> label."""
    found = {}
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            found[button.get("callback_data") or button.get("url")] = button["text"]
    return found


def button_starting(message: dict, prefix: str) -> str:
    found = [data for data in buttons(message) if data.startswith(prefix)]
    assert found, f"no button {prefix}… on {message.get('text')!r}: {buttons(message)}"
    return found[0]


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


async def onboard(chat: Chat, own_bot: FakeBot, api_key: str, *, provider: str = "openai",
                  timeout: float = 15) -> dict:
    """/start to Deploy with the recommended model; the deploy message once it has ended."""
    await chat.send("/start")
    await chat.press(await chat.reply("Welcome"), f"provider:{provider}")
    await chat.press(await chat.reply("which model?"), f"model:{get_provider(provider).default_model}")
    await chat.send(api_key)
    await chat.reply("Key received")
    await chat.send(own_bot.token)
    await chat.press(await chat.reply("Ready to deploy"), "deploy")
    return await chat.reply(lambda m: "Write to your bot" in m.get("text", "") or "✗" in m.get("text", ""),
                            timeout=timeout)
