"""The bot's pacing (bot/pacing.py) on a clock the test moves: which calls wait, for how long,
in which order, and what a 429 holds back."""

from __future__ import annotations

import asyncio

import pytest
from telegram.error import RetryAfter

from bot.pacing import FORGET_IDLE_AFTER_S, PACED_METHODS, Rate, TelegramPacing, TokenBucket, is_group


class ManualClock:
    """Time stands still until the test moves it; sleepers wake once it has passed their time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._moved = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        while self.now < until:
            moved = self._moved
            await moved.wait()

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()
        await settle()


async def settle() -> None:
    for _ in range(20):  # let every task that can run, run
        await asyncio.sleep(0)


class Recorder:
    """Stands in for the HTTP call: notes (method, chat, time) and answers, or refuses with a 429."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[str, object, float]] = []
        self.refusals: dict[tuple[str, object], list[int]] = {}

    def refuse(self, method: str, chat: object, *retry_after: int) -> None:
        self.refusals[(method, chat)] = list(retry_after)

    async def request(self, endpoint: str, data: dict) -> dict:
        pending = self.refusals.get((endpoint, data.get("chat_id")))
        if pending:
            raise RetryAfter(pending.pop(0))
        self.sent.append((endpoint, data.get("chat_id"), self.clock.now))
        return {"ok": True}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recorder(clock: ManualClock) -> Recorder:
    return Recorder(clock)


def pacing(clock: ManualClock, **rates: Rate) -> TelegramPacing:
    return TelegramPacing(clock=clock, sleep=clock.sleep, **rates)


def call(pacer: TelegramPacing, recorder: Recorder, endpoint: str, chat_id: object = None,
         rate_limit_args: int | None = None) -> asyncio.Task:
    data = {} if chat_id is None else {"chat_id": chat_id}
    return asyncio.create_task(pacer.process_request(recorder.request, (endpoint, data), {}, endpoint, data,
                                                     rate_limit_args))


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(burst=3, per_second=2)
    for _ in range(3):
        assert bucket.wait_s(10.0) == 0
        bucket.take(10.0)
    assert bucket.wait_s(10.0) == pytest.approx(0.5)
    assert bucket.wait_s(10.25) == pytest.approx(0.25)
    assert bucket.wait_s(10.5) == 0
    bucket.take(10.5)
    assert not bucket.is_full(11.0)
    assert bucket.is_full(12.0)  # never more than the burst, however long it rests
    assert bucket.wait_s(100.0) == 0 and bucket.tokens == 3


def test_groups_and_channels_are_told_from_private_chats() -> None:
    assert is_group(-1001234567890) and is_group("-42") and is_group("@channel")
    assert not is_group(424242) and not is_group("424242")


def test_only_methods_that_show_a_chat_something_are_paced() -> None:
    assert {"sendMessage", "editMessageText", "sendDocument", "copyMessage", "sendMediaGroup"} <= PACED_METHODS
    assert not {"answerCallbackQuery", "deleteMessage", "getMe", "getUpdates", "setMyCommands"} & PACED_METHODS


async def test_one_chat_gets_its_burst_then_one_message_a_second(clock, recorder) -> None:
    pacer = pacing(clock, private_chat=Rate(burst=3, per_second=1))
    calls = [call(pacer, recorder, "sendMessage", 7) for _ in range(5)]
    await settle()
    assert [at for _, _, at in recorder.sent] == [0, 0, 0]
    await clock.advance(0.5)
    assert len(recorder.sent) == 3
    await clock.advance(0.5)
    await clock.advance(1.0)
    await asyncio.gather(*calls)
    assert [at for _, _, at in recorder.sent] == [0, 0, 0, 1.0, 2.0]


async def test_a_busy_chat_holds_up_neither_other_chats_nor_unpaced_calls(clock, recorder) -> None:
    pacer = pacing(clock, private_chat=Rate(burst=1, per_second=1))
    waiting = [call(pacer, recorder, "sendMessage", 7) for _ in range(3)]
    others = [call(pacer, recorder, "sendMessage", 8), call(pacer, recorder, "editMessageText", 9),
              call(pacer, recorder, "answerCallbackQuery"), call(pacer, recorder, "deleteMessage", 7),
              call(pacer, recorder, "getMe")]
    await asyncio.gather(*others)
    assert sorted((method, chat) for method, chat, at in recorder.sent if at == 0) == [
        ("answerCallbackQuery", None), ("deleteMessage", 7), ("editMessageText", 9), ("getMe", None),
        ("sendMessage", 7), ("sendMessage", 8)]
    await clock.advance(1)
    await clock.advance(1)
    await asyncio.gather(*waiting)
    assert [at for method, chat, at in recorder.sent if (method, chat) == ("sendMessage", 7)] == [0, 1, 2]


async def test_one_chats_messages_leave_in_the_order_they_were_asked_for(clock, recorder) -> None:
    pacer = pacing(clock, private_chat=Rate(burst=2, per_second=1))
    texts = [f"message {n}" for n in range(6)]
    sent: list[str] = []

    async def request(endpoint: str, data: dict) -> dict:
        sent.append(data["text"])
        return {"ok": True}

    calls = [asyncio.create_task(pacer.process_request(request, ("sendMessage", {"chat_id": 7, "text": text}), {},
                                                       "sendMessage", {"chat_id": 7, "text": text}, None))
             for text in texts]
    for _ in range(5):
        await clock.advance(1)
    await asyncio.gather(*calls)
    assert sent == texts


async def test_the_overall_allowance_spaces_messages_across_chats(clock, recorder) -> None:
    pacer = pacing(clock, overall=Rate(burst=2, per_second=8))
    calls = [call(pacer, recorder, "sendMessage", chat) for chat in (1, 2, 3, 4)]
    await settle()
    assert [chat for _, chat, _ in recorder.sent] == [1, 2]
    await clock.advance(0.125)
    await clock.advance(0.125)
    await asyncio.gather(*calls)
    assert [(chat, at) for _, chat, at in recorder.sent] == [(1, 0), (2, 0), (3, 0.125), (4, 0.25)]


async def test_groups_get_twenty_messages_a_minute(clock, recorder) -> None:
    pacer = pacing(clock, group_chat=Rate(burst=1, per_second=20 / 60))
    calls = [call(pacer, recorder, "sendMessage", -100) for _ in range(2)] + [call(pacer, recorder, "sendMessage", 5)]
    await settle()
    assert [(chat, at) for _, chat, at in recorder.sent] == [(-100, 0), (5, 0)]
    await clock.advance(2.5)
    assert len(recorder.sent) == 2
    await clock.advance(0.5)
    await asyncio.gather(*calls)
    assert recorder.sent[-1][1] == -100


async def test_a_429_is_waited_out_for_that_method_in_that_chat_then_retried(clock, recorder) -> None:
    pacer = pacing(clock)
    recorder.refuse("sendMessage", 7, 5)
    refused = call(pacer, recorder, "sendMessage", 7)
    await settle()
    assert recorder.sent == []
    await asyncio.gather(call(pacer, recorder, "sendMessage", 8), call(pacer, recorder, "deleteMessage", 7))
    await clock.advance(4)
    assert not refused.done()
    await clock.advance(1)
    assert await refused == {"ok": True}
    assert recorder.sent[-1] == ("sendMessage", 7, 5.0)
    assert {(method, chat) for method, chat, at in recorder.sent if at == 0} == {("sendMessage", 8),
                                                                                  ("deleteMessage", 7)}


async def test_a_429_on_a_call_without_a_chat_holds_that_method_everywhere(clock, recorder) -> None:
    pacer = pacing(clock)
    recorder.refuse("setMyCommands", None, 3)
    first = call(pacer, recorder, "setMyCommands")
    await settle()
    second = call(pacer, recorder, "setMyCommands")
    await asyncio.gather(call(pacer, recorder, "getMe"))
    await clock.advance(3)
    await asyncio.gather(first, second)
    assert [(method, at) for method, _, at in recorder.sent] == [("getMe", 0), ("setMyCommands", 3), ("setMyCommands", 3)]


async def test_a_call_refused_more_often_than_it_may_retry_raises(clock, recorder) -> None:
    pacer = pacing(clock)
    recorder.refuse("sendMessage", 7, 1, 1)
    refused = call(pacer, recorder, "sendMessage", 7, rate_limit_args=1)
    await settle()
    await clock.advance(1)
    with pytest.raises(RetryAfter):
        await refused
    assert recorder.sent == []


async def test_chats_left_idle_are_forgotten(clock, recorder) -> None:
    pacer = pacing(clock)
    await asyncio.gather(*(call(pacer, recorder, "sendMessage", chat) for chat in range(1, 11)))
    assert pacer.tracked_chats == 10
    await clock.advance(FORGET_IDLE_AFTER_S)
    await asyncio.gather(call(pacer, recorder, "answerCallbackQuery"))
    assert pacer.tracked_chats == 0
