"""Telegram's flood control, for a bot added with `add_bot(flood_limits=FloodLimits())`:
the calls that put a message in a chat are counted in that chat and across all chats,
and one over either allowance answers 429 "Too Many Requests: retry after N" with
`parameters.retry_after`, N being the whole seconds until it would pass, as Telegram does.

Telegram publishes its limits only roughly (https://core.telegram.org/bots/faq): about one
message a second in a chat (short bursts pass), 20 a minute in a group, about 30 a second
overall. Each is modelled as a token bucket: `burst` messages at once, then `per_second`. A
refused call takes nothing from either allowance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fakes.telegram.protocol import BotApiError, JsonDict

# What Telegram counts as a message: sending, copying, forwarding, editing (lower-case names).
MESSAGE_METHODS = frozenset(name.lower() for name in (
    "sendMessage", "sendDocument", "sendPhoto", "sendVideo", "sendAudio", "sendVoice", "sendAnimation",
    "sendSticker", "sendLocation", "sendContact", "sendPoll", "sendDice", "sendVenue", "sendVideoNote",
    "sendMediaGroup", "copyMessage", "copyMessages", "forwardMessage", "forwardMessages",
    "editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",
))


@dataclass(frozen=True)
class FloodLimits:
    overall_burst: float = 30
    overall_per_second: float = 30
    chat_burst: float = 5
    chat_per_second: float = 1
    group_burst: float = 20
    group_per_second: float = 20 / 60


@dataclass
class Allowance:
    burst: float
    per_second: float
    tokens: float = field(init=False)
    at: float | None = None

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def short_by_s(self, now: float) -> float:
        """Seconds until one message more would pass (0 if it passes now)."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second


class FloodControl:
    """One bot's allowances; `check` before a call is served."""

    def __init__(self, limits: FloodLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.overall = Allowance(limits.overall_burst, limits.overall_per_second)
        self.chats: dict[str, Allowance] = {}

    def check(self, method: str, params: JsonDict) -> None:
        chat_id = params.get("chat_id")
        if method.lower() not in MESSAGE_METHODS or chat_id is None:
            return
        chat = self.chats.get(str(chat_id))
        if chat is None:
            group = str(chat_id).startswith(("-", "@"))
            chat = Allowance(*((self.limits.group_burst, self.limits.group_per_second) if group
                               else (self.limits.chat_burst, self.limits.chat_per_second)))
            self.chats[str(chat_id)] = chat
        now = self.clock()
        wait_s = max(chat.short_by_s(now), self.overall.short_by_s(now))
        if wait_s > 0:
            retry_after = max(1, math.ceil(wait_s))
            raise BotApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        chat.tokens -= 1
        self.overall.tokens -= 1
