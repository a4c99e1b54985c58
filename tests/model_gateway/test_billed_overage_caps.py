"""Caps for plans whose overage is billed: calls on the platform's key go on past the included
usage (a "stop" plan's stop there), and stop at the plan's ceiling or the owner's lower cap. Over
the real plan entitlements (a subscription row) and usage rows in the database."""

from __future__ import annotations

import pytest

from billing.entitlements import PlanEntitlements
from billing.plans import parse_plans
from db.models import KEY_OWN, KEY_PLATFORM
from model_gateway.caps import SpendCaps
from model_gateway.prices import load_prices
from model_gateway.usage_book import UsageBook
from tests.support.billing import BILLED_PLANS, spend, subscriber


@pytest.fixture
def caps(sessions) -> SpendCaps:
    return SpendCaps(sessions, UsageBook(sessions, load_prices()), PlanEntitlements(sessions, parse_plans(BILLED_PLANS)),
                     read_cache_ttl_s=0)


async def test_a_billed_plan_goes_on_past_the_included_usage_and_stops_at_its_ceiling(caps, sessions) -> None:
    billed, stopped = await subscriber(sessions, "pro"), await subscriber(sessions, "basic")
    for user in (billed, stopped):
        await spend(sessions, user, 1.5)  # past the $1 included
    assert await caps.refusal(billed.id, KEY_PLATFORM) is None
    refused = await caps.refusal(stopped.id, KEY_PLATFORM)
    assert refused is not None and "included in your plan this month is used up" in refused

    await spend(sessions, billed, 1.5)  # $3: the ceiling
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
