"""The calendar months (UTC) model usage is counted in, for spending caps (model_gateway.caps)
and billed overage (billing.overage), and the unit its cost is kept in."""

from __future__ import annotations

from datetime import date

MICRO = 1_000_000  # model usage cost is kept in micro-dollars (ModelUsage.cost_micro_usd)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
