"""The bot's pacing (bot/pacing.py) in python-telegram-bot's own client, against the fake Bot API
over HTTP: what reaches Telegram, in which order, and how far apart (the fake records when each
call arrived). Spacings are shortened so the tests stay quick; the margins are generous."""

from __future__ import annotations

import asyncio

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import ExtBot

from bot.pacing import Rate, TelegramPacing
from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
from tests.fakes.telegram import FakeTelegram, FloodLimits
from tests.support.bot_chat import running_platform

SPACING_S = 0.25


def texts(calls) -> list[str]:
    return [call.params["text"] for call in calls]


async def test_one_chat_is_paced_while_other_chats_answers_and_deletions_go_at_once(telegram: FakeTelegram) -> None:
    fake = telegram.add_bot()
    busy, other = telegram.user(), telegram.user()
    fake.open_chat(busy)
    fake.open_chat(other)
    async with Bot(fake.token, base_url=f"{telegram.api_url}/bot") as unpaced:  # what the user will press
        asked = await unpaced.send_message(busy.id, "Pick one", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("This", callback_data="this")]]))
    query = await fake.user_presses(busy, asked.message_id, "this")
    started = len(fake.calls)

    pacer = TelegramPacing(private_chat=Rate(burst=1, per_second=1 / SPACING_S))
    async with ExtBot(fake.token, base_url=f"{telegram.api_url}/bot", rate_limiter=pacer) as bot:
        await asyncio.gather(
            *(bot.send_message(busy.id, f"step {n}") for n in range(4)),
            bot.send_message(other.id, "hello"),
            bot.answer_callback_query(query["id"]),
            bot.delete_message(busy.id, asked.message_id),
        )

    calls = fake.calls[started:]
    assert all(call.status == 200 for call in calls)
    to_busy = [c for c in calls if c.method == "sendMessage" and c.params["chat_id"] == busy.id]
    assert texts(to_busy) == ["step 0", "step 1", "step 2", "step 3"]
    assert [m["text"] for m in fake.sent_messages(busy.id)] == ["step 0", "step 1", "step 2", "step 3"]
    gaps = [later.at - earlier.at for earlier, later in zip(to_busy, to_busy[1:])]
    assert all(gap >= SPACING_S * 0.8 for gap in gaps), gaps
    not_held = [c for c in calls if c.method in ("answerCallbackQuery", "deleteMessage")
                or c.params.get("chat_id") == other.id]
    assert len(not_held) == 3
    assert all(call.at < to_busy[1].at for call in not_held)  # none waited for the busy chat's turn


async def test_a_429_is_waited_out_in_that_chat_and_every_message_arrives(telegram: FakeTelegram) -> None:
    # The fake allows one message a second in a chat; the bot is let believe in a far larger burst,
    # so Telegram's refusals, not the bot's own pacing, decide here.
    fake = telegram.add_bot(flood_limits=FloodLimits(chat_burst=1, chat_per_second=1))
    refused, other = telegram.user(), telegram.user()
    fake.open_chat(refused)
    fake.open_chat(other)
    pacer = TelegramPacing(private_chat=Rate(burst=10, per_second=100))
    async with ExtBot(fake.token, base_url=f"{telegram.api_url}/bot", rate_limiter=pacer) as bot:
        first = asyncio.gather(*(bot.send_message(refused.id, f"part {n}") for n in range(3)))
        await asyncio.sleep(0.1)  # the second part has been refused by now
        await bot.send_message(other.id, "meanwhile")
        await first

    to_refused = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == refused.id]
    assert [c.status for c in to_refused] == [200, 429, 200, 429, 200]
    assert to_refused[1].response == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                      "parameters": {"retry_after": 1}}
    assert texts(to_refused) == ["part 0", "part 1", "part 1", "part 2", "part 2"]
    assert all(retry.at - refusal.at >= 0.9 for refusal, retry in zip(to_refused[1::2], to_refused[2::2]))
    assert [m["text"] for m in fake.sent_messages(refused.id)] == ["part 0", "part 1", "part 2"]
    [meanwhile] = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == other.id]
    assert meanwhile.status == 200 and meanwhile.at < to_refused[2].at  # the other chat did not wait


async def test_the_platforms_bot_paces_unless_told_the_bot_api_has_no_flood_limits(settings, sessions) -> None:
    for pacing in (True, False):  # the default, and the bot tests' fake without flood limits (`sessions`: migrated)
        async with running_platform(settings.model_copy(update={"telegram_pacing": pacing})) as server:
            limiter = server.app[PLATFORM].bot.application.bot.rate_limiter
            assert isinstance(limiter, TelegramPacing) if pacing else limiter is None
    assert Settings(_env_file=None).telegram_pacing is True
