"""Monthly spending caps: what a user's model calls may cost in a calendar month (UTC), counted
across all their instances from the usage the model gateway records.

The cap is the user's own (they set it) within their plan's ceiling, if it has one; with no cap
of their own the ceiling is their cap. Calls on the platform's key (an instance that uses
ClawFleet's key, included in the plan) also stop when the month's included usage is spent if the
plan's overage policy is "stop"; with "bill" they go on (billed by billing.overage) up to the cap,
which such a plan always has (its ceiling, billing.plans). Checked before a call is forwarded: a call that would
start at or past the cap is refused, one that starts under it runs to its end (a stream that
crosses the cap finishes). The owner is told in their chat once a month at 80% and once when
calls start being refused, and the refusal itself says why in the words OpenClaw shows them.

The refusal is a 429 in the provider's own error shape with "resets" in its text: measured on
OpenClaw 2026.9.6, a 429 is surfaced after one attempt (no retries, no cooldown of the
credential, so a raised cap works on the very next message) and a message with a time hint
("resets", "try again in") is shown to the user verbatim on OpenAI-style routes; Anthropic-style
routes show OpenClaw's own "rate-limited" line, which is why the chat notice matters. A 402 is
classified as billing ("your API key has run out of credits", and a 10-minute disable), a 403
as "re-authenticate", a 400 as a schema error: each would mislead.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import InvalidInput
from db.models import KEY_OWN, KEY_PLATFORM, ModelUsage, User
from db.months import MICRO, month_of, month_start, next_month_start
from db.read_cache import ReadCache
from model_gateway.usage_book import UsageBook
from provisioner.entitlements import Entitlements
from provisioner.notify import Notifier, NullNotifier, Offer

log = structlog.get_logger(__name__)

WARN_SHARE = 0.8
MAX_CAP_USD = 1_000_000


def dollars(micro_usd: int) -> str:
    return f"${micro_usd / MICRO:,.2f}"


@dataclass(frozen=True)
class Standing:
    """Where a user is this month."""

    spent_micro_usd: int
    cap_micro_usd: int | None  # None: no cap
    own_cap_micro_usd: int | None  # what they set
    ceiling_micro_usd: int | None  # their plan's
    included_micro_usd: int | None = None  # usage on the platform's key their plan includes; None: none
    platform_spent_micro_usd: int = 0  # of spent_micro_usd, what went on the platform's key
    overage_billed: bool = False  # past the included usage, calls on the platform's key go on, billed

    @property
    def overage_micro_usd(self) -> int:
        """What calls on the platform's key cost past the included usage this month (billed on a
        plan whose overage is "bill", in whole cents as it accrues)."""
        return max(0, self.platform_spent_micro_usd - (self.included_micro_usd or 0))

    def included_text(self) -> str | None:
        """The month's included usage in words, for the usage views; None: the plan includes none."""
        if self.included_micro_usd is None:
            return None
        if self.overage_billed:
            return (f"Included in your plan: {dollars(self.included_micro_usd)} on ClawFleet's key; beyond it, "
                    f"billed so far this month: {dollars(self.overage_micro_usd)}.")
        used = min(self.platform_spent_micro_usd, self.included_micro_usd)
        return (f"Included in your plan: {dollars(self.included_micro_usd)} on ClawFleet's key, "
                f"{dollars(used)} of it used this month.")

    @property
    def included_used_up(self) -> bool:
        return self.platform_spent_micro_usd >= (self.included_micro_usd or 0)

    @property
    def reached(self) -> bool:
        return self.cap_micro_usd is not None and self.spent_micro_usd >= self.cap_micro_usd

    @property
    def near(self) -> bool:
        return self.cap_micro_usd is not None and self.spent_micro_usd >= self.cap_micro_usd * WARN_SHARE


def refusal_text(standing: Standing, today: date) -> str:
    """What the owner reads when a call is refused (shown verbatim by OpenClaw on OpenAI-style
    routes: under 300 characters, with "resets" in it, and no billing words)."""
    resets = next_month_start(today)
    return (f"ClawFleet: your monthly spending cap of {dollars(standing.cap_micro_usd or 0)} is reached; it resets "
            f"on {resets:%B} 1. Raise it in the dashboard or with /usage in the ClawFleet bot.")


@dataclass(frozen=True)
class _Caps:
    own: int | None
    ceiling: int | None
    included: int | None
    overage_billed: bool = False


class SpendCaps:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], book: UsageBook, entitlements: Entitlements,
                 notifier: Notifier | None = None, read_cache_ttl_s: float = 2.0) -> None:
        self.sessions = sessions
        self.book = book
        self.entitlements = entitlements
        self.notifier = notifier or NullNotifier()
        # What was spent before this process's unwritten sums, and each user's cap: read again
        # after a write here at once, after another process's within the time to live.
        self._spent: ReadCache[tuple[uuid.UUID, date], tuple[int, int]] = ReadCache(
            sessions, {"model_usage"}, ttl_s=read_cache_ttl_s)
        self._caps: ReadCache[uuid.UUID, _Caps] = ReadCache(sessions, {"users", "subscriptions"},
                                                            ttl_s=read_cache_ttl_s)
        self._telling: set[asyncio.Task[None]] = set()

    async def standing(self, user_id: uuid.UUID, today: date | None = None) -> Standing:
        today = today or datetime.now(UTC).date()
        since = month_start(today)
        written, on_platform = await self._spent.get(
            (user_id, since), lambda: self._written_since(user_id, since)) or (0, 0)
        caps = await self._caps.get(user_id, lambda: self._caps_of(user_id)) or _Caps(None, None, None)
        own, ceiling = caps.own, caps.ceiling
        cap = own if ceiling is None else ceiling if own is None else min(own, ceiling)
        return Standing(written + self.book.pending_micro_usd(user_id, since), cap, own, ceiling, caps.included,
                        on_platform + self.book.pending_micro_usd(user_id, since, KEY_PLATFORM), caps.overage_billed)

    async def refusal(self, user_id: uuid.UUID, key_source: str = KEY_OWN) -> str | None:
        """Why the user's next call (on a key of `key_source`) may not go out, or None. Tells the
        owner in chat the first time this month."""
        if not await self._limited(user_id, key_source):
            return None  # nothing to count against: no reading of the month's spending per call
        today = datetime.now(UTC).date()
        standing = await self.standing(user_id, today)
        resets = f"{next_month_start(today):%B} 1"
        if standing.reached:
            self._tell_once(user_id, "spend_stopped_month", today,
                            f"Your assistant has stopped answering: this month's model spending reached your cap "
                            f"of {dollars(standing.cap_micro_usd or 0)}. It starts again on {resets}, or as soon as "
                            "you raise the cap (/usage).")
            return refusal_text(standing, today)
        if key_source == KEY_PLATFORM and standing.included_used_up and standing.overage_billed:
            self._tell_once(user_id, "included_stopped_month", today,
                            f"The {dollars(standing.included_micro_usd or 0)} of model usage your plan includes this "
                            "month is used up. Your assistant goes on: what it uses from now on is billed with your "
                            f"subscription, up to your cap of {dollars(standing.cap_micro_usd or 0)} (/usage).")
            return None
        if key_source == KEY_PLATFORM and standing.included_used_up:
            self._tell_once(user_id, "included_stopped_month", today,
                            f"Your assistant has stopped answering: the {dollars(standing.included_micro_usd or 0)} "
                            f"of model usage your plan includes this month is used up. It starts again on {resets}; "
                            "to go on before, give it your own API key (/settings) or change plan (/plan).")
            return (f"ClawFleet: the {dollars(standing.included_micro_usd or 0)} of model usage included in your "
                    f"plan this month is used up; it resets on {resets}. Add your own API key or change plan.")
        return None

    async def after_call(self, user_id: uuid.UUID) -> None:
        """Warn the owner once a month when a call took them past 80% of their cap."""
        if not await self._limited(user_id, KEY_OWN):
            return
        today = datetime.now(UTC).date()
        standing = await self.standing(user_id, today)
        if standing.near and not standing.reached:
            self._tell_once(user_id, "spend_warned_month", today,
                            f"Heads-up: this month's model spending is {dollars(standing.spent_micro_usd)}, "
                            f"over 80% of your {dollars(standing.cap_micro_usd or 0)} cap. At the cap your assistant "
                            "stops answering until the month ends or you raise it (/usage).")

    async def set_cap(self, user: User, usd: object) -> Standing:
        """Set the user's own monthly cap in US dollars (None or "": none of their own)."""
        own = _cap_micro_usd(usd)
        ceiling = (await self._caps_of(user.id)).ceiling
        if own is not None and ceiling is not None and own > ceiling:
            raise InvalidInput(f"Your plan allows a monthly cap of at most {dollars(ceiling)}.", field="spend_cap_usd")
        async with self.sessions() as session:
            row = await session.get(User, user.id)
            row.spend_cap_micro_usd = own
            # A new cap is a new start: its warnings are due again when it is neared.
            row.spend_warned_month = row.spend_stopped_month = None
            await session.commit()
        return await self.standing(user.id)

    async def close(self) -> None:
        await asyncio.gather(*self._telling, return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------
    async def _limited(self, user_id: uuid.UUID, key_source: str) -> bool:
        """Whether any cap applies to the user's calls on keys of `key_source`."""
        caps = await self._caps.get(user_id, lambda: self._caps_of(user_id)) or _Caps(None, None, None)
        return caps.own is not None or caps.ceiling is not None or key_source == KEY_PLATFORM

    async def _written_since(self, user_id: uuid.UUID, since: date) -> tuple[int, int]:
        """What the user's calls since `since` cost, in all and on the platform's key."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ModelUsage.key_source, func.sum(ModelUsage.cost_micro_usd))
                .where(ModelUsage.user_id == user_id, ModelUsage.day >= since).group_by(ModelUsage.key_source))).all()
        by_source = {source: int(total or 0) for source, total in rows}
        return sum(by_source.values()), by_source.get(KEY_PLATFORM, 0)

    async def _caps_of(self, user_id: uuid.UUID) -> _Caps:
        async with self.sessions() as session:
            user = await session.get(User, user_id)
        if user is None:
            return _Caps(None, None, None)
        allowance = await self.entitlements.allowance(user)
        ceiling, included = allowance.spend_cap_ceiling_usd, allowance.included_usage_usd
        return _Caps(user.spend_cap_micro_usd, round(ceiling * MICRO) if ceiling else None,
                     round(included * MICRO) if included else None, allowance.overage_billed)

    def _tell_once(self, user_id: uuid.UUID, column: str, today: date, text: str) -> None:
        task = asyncio.create_task(self._tell(user_id, column, month_of(today), text))
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def _tell(self, user_id: uuid.UUID, column: str, month: str, text: str) -> None:
        try:
            async with self.sessions() as session:
                # One UPDATE decides who tells: the first process (and call) to mark the month.
                marked = await session.execute(
                    User.__table__.update().where(User.id == user_id)
                    .where((getattr(User, column).is_(None)) | (getattr(User, column) != month))
                    .values({column: month}))
                await session.commit()
            if marked.rowcount:
                await self.notifier.notify(user_id, text, (Offer("Usage and cap", "usage"),))
        except Exception:
            log.exception("could not tell a user about their spending cap", user_id=str(user_id))


def _cap_micro_usd(value: object) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        usd = float(value.strip().lstrip("$")) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput("Give the cap in US dollars, like 20 or 12.50.", field="spend_cap_usd") from None
    if isinstance(value, bool) or not math.isfinite(usd) or not 0 < usd <= MAX_CAP_USD:
        raise InvalidInput(f"A monthly cap is more than $0 and at most ${MAX_CAP_USD:,}.", field="spend_cap_usd")
    return round(usd * MICRO)
