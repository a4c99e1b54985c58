"""The fake Bot API's flood control (tests/fakes/telegram/flood.py): on a clock the test sets,
then through python-telegram-bot's client over HTTP."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import RetryAfter

from tests.fakes.telegram import BotApiError, FakeTelegram, FloodLimits
from tests.fakes.telegram.flood import FloodControl


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def refusal(control: FloodControl, method: str, chat_id: object) -> BotApiError | None:
    try:
        control.check(method, {"chat_id": chat_id})
    except BotApiError as error:
        return error
    return None


def test_a_chat_gets_its_burst_then_one_message_a_second() -> None:
    clock = Clock()
    control = FloodControl(FloodLimits(chat_burst=3, chat_per_second=1), clock)
    assert [refusal(control, "sendMessage", 7) for _ in range(3)] == [None, None, None]
    refused = refusal(control, "editMessageText", 7)
    assert refused is not None and refused.payload() == {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1}}
    assert refusal(control, "sendMessage", 8) is None  # another chat has its own allowance
    assert refusal(control, "deleteMessage", 7) is None and refusal(control, "answerCallbackQuery", None) is None
    clock.now += 0.5
    assert refusal(control, "sendMessage", 7) is not None
    clock.now += 0.5
    assert refusal(control, "sendMessage", 7) is None


def test_all_chats_together_get_the_overall_allowance() -> None:
    clock = Clock()
    control = FloodControl(FloodLimits(overall_burst=30, overall_per_second=30), clock)
    assert all(refusal(control, "sendMessage", chat) is None for chat in range(1, 31))
    assert refusal(control, "sendMessage", 31) is not None
    clock.now += 0.05  # a little over one thirtieth of a second
    assert refusal(control, "sendMessage", 31) is None


def test_groups_get_twenty_a_minute_and_the_wait_is_rounded_up() -> None:
    clock = Clock()
    control = FloodControl(FloodLimits(group_burst=20, group_per_second=20 / 60), clock)
    assert all(refusal(control, "sendMessage", -100) is None for _ in range(20))
    assert refusal(control, "sendMessage", -100).parameters == {"retry_after": 3}
    assert refusal(control, "sendMessage", 5) is None


async def test_over_http_a_bot_with_flood_limits_is_refused_and_others_are_not() -> None:
    async with FakeTelegram() as telegram:
        held, free = telegram.add_bot(flood_limits=FloodLimits(chat_burst=2)), telegram.add_bot()
        user = telegram.user()
        for fake in (held, free):
            fake.open_chat(user)
        async with Bot(held.token, base_url=f"{telegram.api_url}/bot") as bot:
            for n in range(2):
                await bot.send_message(user.id, f"message {n}")
            with pytest.raises(RetryAfter):
                await bot.send_message(user.id, "one too many")
        async with Bot(free.token, base_url=f"{telegram.api_url}/bot") as bot:
            for n in range(5):
                await bot.send_message(user.id, f"message {n}")
    assert [c.status for c in held.calls_to("sendMessage")] == [200, 200, 429]
    assert len(held.sent_messages(user.id)) == 2 and len(free.sent_messages(user.id)) == 5
