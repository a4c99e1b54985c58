"""Model usage past a plan's included amount, billed through Stripe metered usage (plans with
overage = "bill").

Every round (`OverageReporter.run_once`, one platform process at a time) works out, per user
whose current plan bills overage, what their calls on the platform's key cost this calendar
month (UTC) beyond the plan's `included_usage_usd`, in whole cents (a started cent waits until it
is whole), and compares it with what was reported for that month already (OverageReport). The
difference is queued as an outbox effect in the same transaction that records the new total, so
a crash leaves either both or neither. The previous month is looked at too: usage still in a
process's memory at midnight is written a little later and reported then.

The effect (`MeterEvents.send`) sends one Stripe meter event with that difference as its value
and an identifier made of the user, the month and the cumulative cents: a retried effect sends
the same identifier (and idempotency key), which Stripe counts once. Stripe bills what the meter
sums in each billing period on the subscription's metered item (the plan's `overage_price`, one
cent per unit), so events are sent with the time they are sent at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.outbox import Handler, enqueue
from billing.plans import Plans
from billing.stripe_client import StripeApi
from billing.subscriptions import ENTITLED, rows_of, standing_of
from db.models import KEY_PLATFORM, ModelUsage, OutboxEffect, OverageReport, Subscription, User
from db.months import MICRO, month_of, month_start, next_month_start

log = structlog.get_logger(__name__)

LEASE_NAME = "billing-overage"
REPORT_OVERAGE = "report_overage"
MICRO_PER_CENT = MICRO // 100


def overage_cents(platform_micro_usd: int, included_usd: float) -> int:
    """Whole cents spent on the platform's key beyond what is included."""
    return max(0, platform_micro_usd - round(included_usd * MICRO)) // MICRO_PER_CENT


def identifier(user_id: uuid.UUID, month: str, cumulative_cents: int) -> str:
    """The meter event's identifier: the report that brings the user's `month` to that total."""
    return f"clawfleet-overage-{user_id}-{month}-{cumulative_cents}"


@dataclass(frozen=True)
class Report:
    user_id: uuid.UUID
    month: str
    cents: int  # the month's cumulative overage, now reported
    value: int  # of it, what this report adds


class OverageReporter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], plans: Plans,
                 wake: Callable[[], None] = lambda: None) -> None:
        self.sessions = sessions
        self.plans = plans
        self.wake = wake

    async def run_once(self, today: date | None = None) -> list[Report]:
        """Queue a meter event for each billed user whose overage grew; what was queued."""
        today = today or datetime.now(UTC).date()
        this_month = month_start(today)
        months = (month_start(this_month - timedelta(days=1)), this_month)
        reports = []
        for user_id, customer, included in await self._billed_users():
            for start in months:
                report = await self._report(user_id, customer, included, start)
                if report is not None:
                    reports.append(report)
        if reports:
            self.wake()
        return reports

    async def _billed_users(self) -> list[tuple[uuid.UUID, str, float]]:
        """Users whose current plan bills overage: (id, Stripe customer, included USD)."""
        billed = [plan.id for plan in self.plans if plan.bills_overage]
        if not billed:
            return []
        async with self.sessions() as session:
            candidates = list(await session.execute(
                select(User.id, User.stripe_customer_id).where(User.id.in_(
                    select(Subscription.user_id).where(Subscription.status.in_(ENTITLED),
                                                       Subscription.plan.in_(billed))))))
            found = []
            for user_id, customer in candidates:
                standing = standing_of(await rows_of(session, user_id))
                plan = self.plans.get(standing.plan or "") if standing.entitled else None
                if plan is None or not plan.bills_overage:
                    continue
                if customer is None:
                    log.error("a subscriber on a billed-overage plan has no Stripe customer; overage not reported",
                              user_id=str(user_id))
                    continue
                found.append((user_id, customer, plan.included_usage_usd))
        return found

    async def _report(self, user_id: uuid.UUID, customer: str, included_usd: float, start: date) -> Report | None:
        month = month_of(start)
        async with self.sessions() as session:
            spent = await session.scalar(select(func.coalesce(func.sum(ModelUsage.cost_micro_usd), 0)).where(
                ModelUsage.user_id == user_id, ModelUsage.key_source == KEY_PLATFORM,
                ModelUsage.day >= start, ModelUsage.day < next_month_start(start)))
            cents = overage_cents(int(spent or 0), included_usd)
            row = await session.scalar(select(OverageReport).where(OverageReport.user_id == user_id,
                                                                   OverageReport.month == month))
            reported = row.reported_cents if row is not None else 0
            if cents <= reported:
                return None
            if row is None:
                session.add(OverageReport(user_id=user_id, month=month, reported_cents=cents))
            else:  # only from what was read: a report made meanwhile elsewhere leaves this one undone
                moved = await session.execute(
                    update(OverageReport).where(OverageReport.id == row.id, OverageReport.reported_cents == reported)
                    .values(reported_cents=cents).execution_options(synchronize_session=False))
                if moved.rowcount != 1:
                    return None
            key = identifier(user_id, month, cents)
            enqueue(session, key=key, kind=REPORT_OVERAGE, user_id=user_id,
                    payload={"stripe_customer_id": customer, "value": cents - reported, "identifier": key,
                             "month": month, "cumulative_cents": cents})
            try:
                await session.commit()
            except IntegrityError:  # another round recorded the same total first
                return None
        log.info("model usage overage queued for Stripe", user_id=str(user_id), month=month, cents=cents,
                 value=cents - reported)
        return Report(user_id, month, cents, cents - reported)


class MeterEvents:
    """The outbox handler that sends a queued overage report to Stripe as a meter event."""

    def __init__(self, stripe: StripeApi, event_name: str) -> None:
        self.stripe = stripe
        self.event_name = event_name

    def table(self) -> dict[str, Handler]:
        return {REPORT_OVERAGE: self.send}

    async def send(self, effect: OutboxEffect) -> None:
        payload = effect.payload or {}
        await self.stripe.send_meter_event(self.event_name, customer=payload["stripe_customer_id"],
                                           value=int(payload["value"]), identifier=payload["identifier"])
