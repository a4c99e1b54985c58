"""Usage as people read it: the model gateway's records (`model_usage`, one row per instance,
UTC day and model) summed per day, per model, for today and for this month. Read-only, and the
one place that reads those rows for display; spending caps read them for enforcement (caps.py).

What the usage book has not flushed yet (a second or so) is not here: a cap's standing
(SpendCaps.standing) counts it, so the month's spending it shows may be a little ahead.
Every query stays within one instance's rows (the unique key starts with instance_id, day) or
one user's (the index on user_id, day), over the days asked for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ModelUsage

COUNTED = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests", "errors",
           "cost_micro_usd")


@dataclass(frozen=True)
class Tally:
    """Usage summed over some rows; cost in micro-dollars."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    requests: int = 0
    errors: int = 0
    cost_micro_usd: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, name) + getattr(other, name) for name in COUNTED))

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @classmethod
    def of(cls, row: object) -> Tally:
        return cls(*(int(getattr(row, name) or 0) for name in COUNTED))


@dataclass(frozen=True)
class ModelDay:
    model: str
    provider: str
    tally: Tally


@dataclass(frozen=True)
class DayUsage:
    day: date
    tally: Tally
    models: tuple[ModelDay, ...] = ()  # by cost, the most expensive first


@dataclass(frozen=True)
class Period:
    """Today and this month so far (UTC)."""

    today: Tally
    month: Tally


def utc_today() -> date:
    return datetime.now(UTC).date()


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _sums():
    return [func.coalesce(func.sum(getattr(ModelUsage, name)), 0).label(name) for name in COUNTED]


class UsageReports:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def daily(self, instance_id: uuid.UUID, first: date, last: date) -> list[DayUsage]:
        """Every day from `first` to `last`, both included, days without calls as zeros (a
        chart's bars, a table's rows), each with its models."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ModelUsage.day, ModelUsage.model, ModelUsage.provider,
                       *(getattr(ModelUsage, name) for name in COUNTED))
                .where(ModelUsage.instance_id == instance_id, ModelUsage.day >= first, ModelUsage.day <= last)
            )).all()
        models: dict[date, list[ModelDay]] = {}
        for row in rows:  # one row per day and model already: the unique key
            models.setdefault(row.day, []).append(ModelDay(row.model, row.provider, Tally.of(row)))
        days = []
        for day in days_between(first, last):
            found = sorted(models.get(day, ()), key=lambda each: (-each.tally.cost_micro_usd, each.model))
            days.append(DayUsage(day, sum((each.tally for each in found), Tally()), tuple(found)))
        return days

    async def instance_period(self, instance_id: uuid.UUID, today: date | None = None) -> Period:
        today = today or utc_today()
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ModelUsage.day, *_sums())
                .where(ModelUsage.instance_id == instance_id, ModelUsage.day >= today.replace(day=1),
                       ModelUsage.day <= today)
                .group_by(ModelUsage.day))).all()
        return _period(rows, today)

    async def user_periods(self, user_id: uuid.UUID, today: date | None = None) -> dict[uuid.UUID, Period]:
        """Today and this month for each of the user's instances that made calls this month
        (deleted ones too: their usage stays the user's)."""
        today = today or utc_today()
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ModelUsage.instance_id, ModelUsage.day, *_sums())
                .where(ModelUsage.user_id == user_id, ModelUsage.day >= today.replace(day=1),
                       ModelUsage.day <= today)
                .group_by(ModelUsage.instance_id, ModelUsage.day))).all()
        by_instance: dict[uuid.UUID, list] = {}
        for row in rows:
            by_instance.setdefault(row.instance_id, []).append(row)
        return {instance_id: _period(found, today) for instance_id, found in by_instance.items()}


def user_total(periods: dict[uuid.UUID, Period]) -> Period:
    """The user's today and month across their instances."""
    return Period(sum((each.today for each in periods.values()), Tally()),
                  sum((each.month for each in periods.values()), Tally()))


def _period(rows: list, today: date) -> Period:
    month = sum((Tally.of(row) for row in rows), Tally())
    return Period(sum((Tally.of(row) for row in rows if row.day == today), Tally()), month)



def money_text(micro_usd: int) -> str:
    """Dollars as a person reads them: cents, but a few calls' worth is not shown as $0.00."""
    if 0 < micro_usd < 10_000:
        return "under $0.01"
    return f"${micro_usd / 1_000_000:,.2f}"


def share_of_cap(spent_micro_usd: int, cap_micro_usd: int | None) -> int | None:
    """How much of the cap is spent, in whole percent (rounded down: 79.9% is not yet 80%)."""
    if not cap_micro_usd:
        return None
    return spent_micro_usd * 100 // cap_micro_usd
