"""Stripe's subscription objects read into our rows, and what a change of them means.

Whatever told us (a webhook, the periodic sync, a person's own request), the subscription is
read again from Stripe and written here the same way; what follows is decided by comparing what
the user was entitled to before and after, never by the kind or order of the event. So events
that arrive twice, late or out of order all end in what Stripe says now."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.plans import Plans
from db.models import Subscription, User
from db.types import utcnow

log = structlog.get_logger(__name__)

# Statuses that give what the plan allows. `past_due` too: Stripe is retrying the payment, and
# its own retry schedule, not a timer of ours, decides when that grace ends (then `unpaid` or
# `canceled`, which we follow).
ENTITLED = frozenset({"active", "trialing", "past_due"})
FINAL = frozenset({"canceled", "incomplete_expired"})  # nothing about them changes any more
UNKNOWN_PLAN = "unknown"  # a price the plans file does not name (removed since): no entitlement


@dataclass(frozen=True)
class StripeSubscription:
    """What billing needs of a Stripe subscription, from either layout: today's (periods on the
    items) and the 2017 one (periods on the subscription) that older fakes answer in."""

    id: str
    customer: str | None
    status: str
    price_id: str | None
    item_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    ended_at: datetime | None
    user_id: uuid.UUID | None  # from the metadata ClawFleet puts on it at checkout
    # (item id, price id) of its metered items (a plan's overage_price): never the plan's item
    metered_items: tuple[tuple[str, str | None], ...] = ()


def read_subscription(obj: Any) -> StripeSubscription:
    """The plan's price and item are those of the first licensed item: a metered one (billed
    overage) sits beside it and names no plan."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    items = [item or {} for item in (data.get("items") or {}).get("data") or []]
    metered = [item for item in items if _metered(item)]
    item = next((item for item in items if not _metered(item)), {})
    price = item.get("price") or item.get("plan") or data.get("plan") or {}
    period_end = item.get("current_period_end") or data.get("current_period_end")
    metadata = data.get("metadata") or {}
    customer = data.get("customer")
    return StripeSubscription(
        id=data["id"],
        customer=customer.get("id") if isinstance(customer, dict) else customer,
        status=str(data.get("status") or "incomplete"),
        price_id=price.get("id") if isinstance(price, dict) else price,
        item_id=item.get("id"),
        current_period_end=_time(period_end),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        ended_at=_time(data.get("ended_at")),
        user_id=_uuid(metadata.get("clawfleet_user_id")),
        metered_items=tuple((entry["id"], _price_id(entry)) for entry in metered),
    )


def _price_of(item: dict) -> dict:
    price = item.get("price") or item.get("plan") or {}
    return price if isinstance(price, dict) else {"id": price}


def _price_id(item: dict) -> str | None:
    return _price_of(item).get("id")


def _metered(item: dict) -> bool:
    price = _price_of(item)
    return ((price.get("recurring") or {}).get("usage_type") or price.get("usage_type")) == "metered"


@dataclass(frozen=True)
class Standing:
    """What a user's subscriptions give them, at one moment."""

    entitled: bool
    plan: str | None  # the plan id of the subscription that decides, entitled or last seen
    status: str | None

    @property
    def past_due(self) -> bool:
        return self.status == "past_due"


NO_SUBSCRIPTION = Standing(False, None, None)


def standing_of(rows: list[Subscription]) -> Standing:
    """The newest entitled subscription decides; without one, the newest of any."""
    if not rows:
        return NO_SUBSCRIPTION
    ordered = sorted(rows, key=lambda row: row.created_at, reverse=True)
    deciding = next((row for row in ordered if row.status in ENTITLED and row.plan != UNKNOWN_PLAN), ordered[0])
    entitled = deciding.status in ENTITLED and deciding.plan != UNKNOWN_PLAN
    return Standing(entitled, deciding.plan, deciding.status)


async def rows_of(session: AsyncSession, user_id: uuid.UUID) -> list[Subscription]:
    return list(await session.scalars(select(Subscription).where(Subscription.user_id == user_id)))


@dataclass(frozen=True)
class Change:
    user_id: uuid.UUID
    before: Standing
    after: Standing
    drift: dict[str, tuple[object, object]]  # field: (was, is) on the row, for the log and the audit


async def record(session: AsyncSession, user_id: uuid.UUID, facts: StripeSubscription, plans: Plans) -> Change:
    """Write what Stripe says of one subscription into its row (made on first sight), in the
    caller's transaction; the caller commits. The owner's row is written first, so changes for
    one user (a webhook and the person's own request at once) are decided one after the other,
    each seeing what the other wrote (PostgreSQL locks the row; SQLite has one writer)."""
    await session.execute(update(User).where(User.id == user_id).values(stripe_customer_id=User.stripe_customer_id)
                          .execution_options(synchronize_session=False))
    rows = await rows_of(session, user_id)
    before = standing_of(rows)
    row = next((row for row in rows if row.stripe_subscription_id == facts.id), None)
    new = row is None
    if new:
        row = Subscription(user_id=user_id, stripe_subscription_id=facts.id, status=facts.status,
                           plan=UNKNOWN_PLAN, created_at=utcnow())
        session.add(row)
        rows.append(row)
    plan = plans.by_price(facts.price_id)
    if plan is None and facts.status in ENTITLED:
        log.error("a paid subscription's price is in no plan of the plans file: it gives nothing until the "
                  "plan is back", subscription=facts.id, price=facts.price_id)
    wanted = {"status": facts.status, "plan": plan.id if plan else UNKNOWN_PLAN, "stripe_price_id": facts.price_id,
              "current_period_end": facts.current_period_end, "cancel_at_period_end": facts.cancel_at_period_end,
              "ended_at": facts.ended_at}
    drift = {key: (None if new else getattr(row, key), value) for key, value in wanted.items()
             if new or getattr(row, key) != value}
    for key, value in wanted.items():
        setattr(row, key, value)
    row.synced_at = utcnow()
    return Change(user_id, before, standing_of(rows), {key: (str(a), str(b)) for key, (a, b) in drift.items()})


def _time(value: object) -> datetime | None:
    if isinstance(value, (int, float)) and value > 0:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
