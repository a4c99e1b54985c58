"""The bot's updates in /metrics, by kind: a person's messages and button presses through the
real python-telegram-bot application against the fake Bot API."""

from __future__ import annotations

import aiohttp

from tests.support.bot_chat import Chat
from tests.support.metrics_scrape import parsed, value


async def _scraped(platform) -> dict:
    async with aiohttp.ClientSession() as http, http.get(platform.make_url("/metrics")) as response:
        assert response.status == 200
        return parsed(await response.text())


async def test_messages_and_button_presses_are_counted_by_kind(platform, chat: Chat) -> None:
    await chat.send("/start")
    welcome = await chat.reply("provider")
    await chat.press(welcome, "provider:openai")
    await chat.reply("model")
    await chat.send("/status")
    await chat.reply()
    families = await _scraped(platform)
    assert value(families, "clawfleet_bot_updates_total", kind="message") == 2
    assert value(families, "clawfleet_bot_updates_total", kind="callback_query") == 1
