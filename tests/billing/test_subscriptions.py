"""Subscriptions as Stripe sends them, in today's layout and the 2017 one, and what a user's
rows entitle them to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from billing.plans import parse_plans
from billing.service import metered_changes
from billing.subscriptions import UNKNOWN_PLAN, read_subscription, record, standing_of
from db.models import Subscription, User
from db.types import utcnow

PLANS = parse_plans("""
[plans.solo]
name = "Solo"
stripe_price = "price_solo"
instances = 1
memory_mb = 1024
cpus = 1
[plans.duo]
name = "Duo"
stripe_price = "price_duo"
instances = 2
memory_mb = 1024
cpus = 1
""")
PERIOD_END = 1_900_000_000


def today(status="active", price="price_solo", **extra):
    """API 2025-03-31 and later: periods on the items, price objects."""
    return {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
            "cancel_at_period_end": False, "ended_at": None, "metadata": {},
            "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": price},
                                                   "current_period_end": PERIOD_END}]}, **extra}


def older(status="active", plan="price_solo"):
    """The 2017 layout (localstripe's): periods on the subscription, plan objects on the items."""
    return {"id": "sub_1", "object": "subscription", "customer": {"id": "cus_1"}, "status": status,
            "current_period_end": PERIOD_END, "cancel_at_period_end": True, "ended_at": PERIOD_END + 5,
            "items": {"data": [{"id": "si_1", "plan": {"id": plan}}]}, "metadata": {}}


def test_both_layouts_read_the_same():
    new, old = read_subscription(today()), read_subscription(older())
    for facts in (new, old):
        assert (facts.id, facts.customer, facts.status, facts.price_id, facts.item_id) == \
            ("sub_1", "cus_1", "active", "price_solo", "si_1")
        assert facts.current_period_end == datetime.fromtimestamp(PERIOD_END, tz=timezone.utc)
    assert old.cancel_at_period_end and old.ended_at is not None and not new.cancel_at_period_end


def test_a_metered_item_is_never_taken_for_the_plans_whatever_its_place():
    metered = {"id": "si_m", "price": {"id": "price_solo_overage", "recurring": {"usage_type": "metered"}},
               "current_period_end": PERIOD_END}
    subscription = today()
    subscription["items"]["data"].insert(0, metered)
    facts = read_subscription(subscription)
    assert (facts.price_id, facts.item_id) == ("price_solo", "si_1")
    assert facts.metered_items == (("si_m", "price_solo_overage"),)
    assert read_subscription(today()).metered_items == ()
    old = older()
    old["items"]["data"].append({"id": "si_m", "plan": {"id": "price_solo_overage", "usage_type": "metered"}})
    assert (read_subscription(old).item_id, read_subscription(old).metered_items) == ("si_1", (("si_m", "price_solo_overage"),))


@pytest.mark.parametrize(("items", "wanted", "changes"), [
    ((), "price_b", [{"price": "price_b"}]),  # to a billed plan: added
    ((("si_m", "price_a"),), "price_b", [{"id": "si_m", "price": "price_b"}]),  # billed to billed: swapped
    ((("si_m", "price_b"),), "price_b", []),  # already on it
    ((("si_m", "price_a"),), None, [{"id": "si_m", "deleted": True}]),  # to a "stop" plan: removed
    ((("si_m", "price_a"), ("si_n", "price_c")), "price_a", [{"id": "si_n", "deleted": True}]),
    ((), None, []),
])
def test_a_plan_change_brings_the_metered_items_to_the_new_plans(items, wanted, changes):
    assert metered_changes(items, wanted) == changes


def test_the_owner_is_read_from_the_metadata_and_nonsense_is_ignored():
    user_id = "8f5e3b6e-28a1-4d5e-9c3f-6f0f5b3b2a11"
    assert str(read_subscription(today(metadata={"clawfleet_user_id": user_id})).user_id) == user_id
    assert read_subscription(today(metadata={"clawfleet_user_id": "x"})).user_id is None


def row(status, plan="solo", age_days=0):
    return Subscription(status=status, plan=plan, created_at=utcnow() - timedelta(days=age_days))


@pytest.mark.parametrize(("rows", "entitled", "plan", "status"), [
    ([], False, None, None),
    ([row("active")], True, "solo", "active"),
    ([row("past_due")], True, "solo", "past_due"),  # Stripe's grace: still running
    ([row("trialing", "duo")], True, "duo", "trialing"),
    ([row("canceled"), row("unpaid", age_days=1)], False, "solo", "canceled"),
    ([row("canceled", age_days=0), row("active", "duo", age_days=3)], True, "duo", "active"),  # newest entitled
    ([row("active", UNKNOWN_PLAN)], False, UNKNOWN_PLAN, "active"),  # a price the plans file lost
    ([row("incomplete")], False, "solo", "incomplete"),
])
def test_the_newest_entitled_subscription_decides(rows, entitled, plan, status):
    standing = standing_of(rows)
    assert (standing.entitled, standing.plan, standing.status) == (entitled, plan, status)


async def test_recording_a_subscription_twice_changes_it_once(sessions):
    async with sessions() as session:
        user = User(telegram_user_id=5)
        session.add(user)
        await session.commit()
        first = await record(session, user.id, read_subscription(today()), PLANS)
        await session.commit()
        again = await record(session, user.id, read_subscription(today()), PLANS)
        moved = await record(session, user.id, read_subscription(today(price="price_duo")), PLANS)
        gone = await record(session, user.id, read_subscription(today(status="canceled", price="price_duo")), PLANS)
        await session.commit()
    assert (first.before.entitled, first.after.entitled, first.after.plan) == (False, True, "solo")
    assert again.drift == {} and again.before == again.after
    assert moved.drift["plan"] == ("solo", "duo") and moved.after.entitled
    assert gone.before.entitled and not gone.after.entitled
    async with sessions() as session:
        rows = (await session.execute(Subscription.__table__.select())).all()
    assert len(rows) == 1  # one row per Stripe subscription
