"""Caps for plans whose overage is billed: calls on the platform's key go on past the included
usage (a "stop" plan's stop there), and stop at the plan's ceiling or the owner's lower cap. Over
the real plan entitlements (a subscription row) and usage rows in the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.entitlements import PlanEntitlements
from billing.plans import parse_plans
from db.models import KEY_OWN, KEY_PLATFORM, ModelUsage, Subscription, User
from db.types import utcnow
from model_gateway.caps import SpendCaps
from model_gateway.prices import load_prices
from model_gateway.usage_book import UsageBook
from tests.support.billing import BILLED_PLANS
from tests.support.builders import new_user


@pytest.fixture
def caps(sessions) -> SpendCaps:
    return SpendCaps(sessions, UsageBook(sessions, load_prices()), PlanEntitlements(sessions, parse_plans(BILLED_PLANS)),
                     read_cache_ttl_s=0)


async def subscriber(sessions, plan: str) -> User:
    async with sessions() as session:
        user = new_user()
        session.add(user)
        await session.flush()
        session.add(Subscription(user_id=user.id, stripe_subscription_id=f"sub_{user.id.hex[:12]}", status="active",
                                 plan=plan, stripe_price_id=f"price_{plan}", created_at=utcnow()))
        await session.commit()
        return user


async def spend(sessions, user: User, usd: float, key_source: str = KEY_PLATFORM, model: str = "gpt-5.5") -> None:
    async with sessions() as session:
        session.add(ModelUsage(user_id=user.id, instance_id=user.id, day=datetime.now(UTC).date(), provider="openai",
                               model=model, key_source=key_source, requests=1, cost_micro_usd=round(usd * 1e6)))
        await session.commit()


async def test_a_billed_plan_goes_on_past_the_included_usage_and_stops_at_its_ceiling(caps, sessions) -> None:
    billed, stopped = await subscriber(sessions, "pro"), await subscriber(sessions, "basic")
    for user in (billed, stopped):
        await spend(sessions, user, 1.5)  # past the $1 included
    assert await caps.refusal(billed.id, KEY_PLATFORM) is None
    refused = await caps.refusal(stopped.id, KEY_PLATFORM)
    assert refused is not None and "included in your plan this month is used up" in refused

    await spend(sessions, billed, 1.5, model="gpt-5.5-mini")  # $3: the ceiling
    refused = await caps.refusal(billed.id, KEY_PLATFORM)
    assert refused is not None and "spending cap of $3.00 is reached" in refused
    assert "spending cap of $3.00" in (await caps.refusal(billed.id, KEY_OWN) or "")


async def test_a_billed_plans_owner_cap_below_the_ceiling_stops_calls_on_the_platforms_key(caps, sessions) -> None:
    billed = await subscriber(sessions, "pro")
    await caps.set_cap(billed, 2)
    await spend(sessions, billed, 1.5)
    assert await caps.refusal(billed.id, KEY_PLATFORM) is None
    await spend(sessions, billed, 0.5, key_source=KEY_OWN)  # their own key's calls count toward their cap too
    refused = await caps.refusal(billed.id, KEY_PLATFORM)
    assert refused is not None and "spending cap of $2.00 is reached" in refused
