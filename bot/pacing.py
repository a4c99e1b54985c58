"""Pacing of the bot's Bot API calls to Telegram's flood limits, through python-telegram-bot's
rate limiter hook (`ApplicationBuilder.rate_limiter`).

Telegram limits messages, not calls (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one a second in one chat with short bursts, 20 a minute in a group, about 30 a second
across all chats. So only the methods that put a message in a chat (or change one) wait for
their turn, in their chat and overall; callback answers, deletions and reads go straight out.
Whatever Telegram still refuses with 429 is waited out for that method in that chat (in every
chat, for a call that names none) and tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = structlog.get_logger(__name__)

# Each of these shows a chat something new, which is what Telegram's flood limits count.
PACED_METHODS = frozenset({
    "sendMessage", "editMessageText",  # the conversation itself: replies and steps edited in place
    "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",  # an edit is a message again
    "sendDocument", "sendPhoto", "sendVideo", "sendAudio", "sendVoice", "sendAnimation",  # /logs as a file
    "sendSticker", "sendLocation", "sendContact", "sendPoll", "sendDice", "sendVenue", "sendVideoNote",
    "sendMediaGroup",  # one call, several messages: counted as one, as Telegram does not say otherwise
    "copyMessage", "copyMessages", "forwardMessage", "forwardMessages",  # a message in another chat
})


@dataclass
class TokenBucket:
    """Up to `burst` at once, then `per_second` on average: a call takes a token, tokens drip back."""

    burst: float
    per_second: float
    tokens: float = field(init=False)
    updated_at: float = field(init=False, default=float("-inf"))

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if now > self.updated_at:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.per_second)
            self.updated_at = now

    def wait_s(self, now: float) -> float:
        """How long until a token is there (0: now)."""
        self._refill(now)
        return max(0.0, (1 - self.tokens) / self.per_second)

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass(frozen=True)
class Rate:
    burst: float
    per_second: float

    def bucket(self) -> TokenBucket:
        return TokenBucket(self.burst, self.per_second)


# Inside Telegram's limits rather than on them: a call is counted here when it leaves, by Telegram
# when it arrives, and calls that leave apart can arrive closer together. Bursts smaller than
# Telegram's (30 overall) leave room for that; the pace itself is Telegram's.
OVERALL = Rate(burst=20, per_second=30)
PRIVATE_CHAT = Rate(burst=3, per_second=1)
GROUP_CHAT = Rate(burst=3, per_second=20 / 60)
FORGET_IDLE_AFTER_S = 60.0  # how often chats whose allowance is whole again are dropped


@dataclass
class ChatTurn:
    """One chat's allowance, and its lock: its messages leave one at a time, in order."""

    bucket: TokenBucket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    callers: int = 0  # holding or waiting for the lock: such a chat is never forgotten


def is_group(chat_id: object) -> bool:
    """Groups, supergroups and channels: negative ids, or an @username (only those have one here)."""
    with contextlib.suppress(TypeError, ValueError):
        return int(chat_id) < 0
    return isinstance(chat_id, str)


def retry_after_s(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # an int now, a timedelta later (or with PTB_TIMEDELTA): both read
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class TelegramPacing(BaseRateLimiter[int]):
    """`rate_limit_args`, when a caller gives it, is how many times a refused call is retried."""

    def __init__(self, *, overall: Rate = OVERALL, private_chat: Rate = PRIVATE_CHAT,
                 group_chat: Rate = GROUP_CHAT, max_retries: int = 3,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.private_chat, self.group_chat = private_chat, group_chat
        self.max_retries = max_retries
        self.clock, self.sleep = clock, sleep
        self._overall = overall.bucket()
        self._overall_lock = asyncio.Lock()  # chats wait for the overall allowance in arrival order
        self._chats: dict[str, ChatTurn] = {}
        self._paused_until: dict[tuple[str, str | None], float] = {}  # (method, chat) after a 429
        self._swept_at = clock()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def tracked_chats(self) -> int:
        return len(self._chats)

    async def process_request(self, callback: Callable[..., Awaitable[Any]], args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any], rate_limit_args: int | None) -> Any:
        chat = None if data.get("chat_id") is None else str(data["chat_id"])
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        self._forget_idle()
        if endpoint not in PACED_METHODS or chat is None:
            return await self._call(callback, args, kwargs, endpoint, chat, retries)
        turn = self._chats.get(chat)
        if turn is None:
            turn = self._chats[chat] = ChatTurn((self.group_chat if is_group(chat) else self.private_chat).bucket())
        turn.callers += 1
        try:
            async with turn.lock:  # held through retries, so a refused message is not overtaken
                await self._sleep_while(turn.bucket.wait_s)
                async with self._overall_lock:
                    await self._sleep_while(self._overall.wait_s)
                    now = self.clock()
                    self._overall.take(now)
                    turn.bucket.take(now)
                return await self._call(callback, args, kwargs, endpoint, chat, retries)
        finally:
            turn.callers -= 1

    async def _call(self, callback: Callable[..., Awaitable[Any]], args: Any, kwargs: dict[str, Any],
                    endpoint: str, chat: str | None, retries: int) -> Any:
        for attempt in range(retries + 1):
            await self._sleep_while(lambda now: self._pause_s(endpoint, chat, now))
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as refused:
                if attempt == retries:
                    raise
                wait_s = retry_after_s(refused)
                log.info("Telegram asked to wait", method=endpoint, seconds=wait_s, every_chat=chat is None)
                key = (endpoint, chat)
                self._paused_until[key] = max(self._paused_until.get(key, 0.0), self.clock() + wait_s)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _pause_s(self, endpoint: str, chat: str | None, now: float) -> float:
        """What is left of a 429's wait for this method here, or everywhere."""
        until = max(self._paused_until.get((endpoint, chat), 0.0), self._paused_until.get((endpoint, None), 0.0))
        return max(0.0, until - now)

    async def _sleep_while(self, wait_s: Callable[[float], float]) -> None:
        while (seconds := wait_s(self.clock())) > 0:
            await self.sleep(seconds)

    def _forget_idle(self) -> None:
        """Drop the chats whose allowance is whole again and nobody waits on, and spent pauses:
        memory follows the chats active lately, not every chat ever written to."""
        now = self.clock()
        if now - self._swept_at < FORGET_IDLE_AFTER_S:
            return
        self._swept_at = now
        for chat, turn in list(self._chats.items()):
            if not turn.callers and turn.bucket.is_full(now):
                del self._chats[chat]
        for key, until in list(self._paused_until.items()):
            if until <= now:
                del self._paused_until[key]
