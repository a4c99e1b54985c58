"""How updates reach the bot (long polling under a lease, or the webhook) and how it lives with
Telegram's refusals (429 flood control, 403 blocked, 400 message not modified)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiohttp
from pydantic import SecretStr
from telegram import Bot

from bot.replies import edit
from db.leases import acquire_named_lease
from tests.support.bot_chat import Chat, running_platform
from tests.support.platform_process import free_port

WEBHOOK_SECRET = "webhook-secret-0123456789"


def _update(user, update_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": 1, "date": 0, "text": text, "from": user.as_user(),
        "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}] if text.startswith("/") else [],
    }}


async def test_webhook_mode_takes_updates_with_the_right_secret_only(settings, sessions, runtime, chat: Chat,
                                                                      clawfleet_bot) -> None:
    port = free_port()
    settings = settings.model_copy(update={
        "telegram_mode": "webhook", "telegram_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "public_url": f"http://127.0.0.1:{port}"})
    async with running_platform(settings, runtime, port=port), aiohttp.ClientSession() as http:
        assert clawfleet_bot.webhook_url == f"http://127.0.0.1:{port}/api/webhooks/telegram"
        [set_webhook] = clawfleet_bot.calls_to("setWebhook")
        assert set_webhook.params["secret_token"] == WEBHOOK_SECRET

        await chat.send("/start")  # the fake delivers it to the webhook, secret header included
        await chat.reply("Welcome to ClawFleet")

        url = f"http://127.0.0.1:{port}/api/webhooks/telegram"
        body = json.dumps(_update(chat.user, 10, "/help"))
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 401
        async with http.post(url, data="{not json", headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}) \
                as response:
            assert response.status == 400
        await asyncio.sleep(0.5)
        assert not any("What I can do" in m.get("text", "") for m in clawfleet_bot.sent_messages(chat.user.id))

        async with http.post(url, data=body, headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}) \
                as response:
            assert response.status == 200
        await chat.reply("What I can do")


async def test_without_webhook_mode_the_route_is_not_there(settings, sessions, runtime, chat: Chat) -> None:
    async with running_platform(settings, runtime) as server, aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/api/webhooks/telegram"), data=json.dumps(_update(chat.user, 1, "/start")),
                             headers={"X-Telegram-Bot-Api-Secret-Token": "anything"}) as response:
            assert response.status == 404


async def test_only_the_lease_holder_polls(settings, sessions, runtime, chat: Chat, clawfleet_bot) -> None:
    async with sessions() as session:  # another platform process polls already
        assert await acquire_named_lease(session, "telegram-polling", "other-process", timedelta(seconds=3))
    async with running_platform(settings, runtime):
        await asyncio.sleep(1.5)
        assert clawfleet_bot.calls_to("getUpdates") == []
        await chat.send("/help")  # once the other's lease lapses (3 s), this one takes over
        await chat.reply("What I can do", timeout=10)


async def test_flood_control_is_waited_out(settings, sessions, runtime, chat: Chat, clawfleet_bot) -> None:
    async with running_platform(settings.model_copy(update={"telegram_pacing": True}), runtime):  # as in production
        clawfleet_bot.rate_limit("sendMessage", retry_after=1)
        await chat.send("/help")
        await chat.reply("What I can do", timeout=10)
        statuses = [call.status for call in clawfleet_bot.calls_to("sendMessage")]
        assert statuses[:2] == [429, 200]


async def test_a_user_who_blocked_the_bot_breaks_nothing(settings, sessions, runtime, chat: Chat,
                                                         clawfleet_bot) -> None:
    async with running_platform(settings, runtime):
        clawfleet_bot.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        await chat.send("/help")
        await asyncio.sleep(0.5)
        await chat.send("/help")
        await chat.reply("What I can do")
        assert [call.status for call in clawfleet_bot.calls_to("sendMessage")][:2] == [403, 200]


async def test_an_edit_that_changes_nothing_is_not_an_error(telegram, clawfleet_bot, chat: Chat) -> None:
    clawfleet_bot.open_chat(chat.user)
    async with Bot(clawfleet_bot.token, base_url=f"{telegram.api_url}/bot") as bot:
        message = await bot.send_message(chat.user.id, "Deploying")
        await edit(message, "Deploying…")
        await edit(message, "Deploying…")  # Telegram: "message is not modified"
    statuses = [call.status for call in clawfleet_bot.calls_to("editMessageText")]
    assert statuses == [200, 400]
    assert clawfleet_bot.sent_messages(chat.user.id)[-1]["text"] == "Deploying…"
