"""Caps for plans whose overage is billed: calls on the platform's key go on past the included
usage (a "stop" plan's stop there), and stop at the plan's ceiling or the owner's lower cap. Over
the real plan entitlements (a subscription row) and usage rows in the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.entitlements import PlanEntitlements
from bot.usage import standing_lines
from billing.plans import parse_plans
from db.models import KEY_OWN, KEY_PLATFORM
from model_gateway.caps import SpendCaps
from model_gateway.prices import load_prices
from model_gateway.usage_book import UsageBook
from tests.support.billing import BILLED_PLANS, spend, subscriber
from web.api.usage import standing_body
from web.pages.usage_panel import cap_meter


@pytest.fixture
def told() -> list[str]:
    return []


@pytest.fixture
async def caps(sessions, told):
    class Chat:
        async def notify(self, user_id, text, offers=()) -> None:
            told.append(text)

    caps = SpendCaps(sessions, UsageBook(sessions, load_prices()), PlanEntitlements(sessions, parse_plans(BILLED_PLANS)),
                     Chat(), read_cache_ttl_s=0)
    yield caps
    await caps.close()


async def test_a_billed_plan_goes_on_past_the_included_usage_and_stops_at_its_ceiling(caps, sessions, told) -> None:
    billed, stopped = await subscriber(sessions, "pro"), await subscriber(sessions, "basic")
    for user in (billed, stopped):
        await spend(sessions, user, 1.5)  # past the $1 included
    assert await caps.refusal(billed.id, KEY_PLATFORM) is None
    assert await caps.refusal(billed.id, KEY_PLATFORM) is None
    await caps.close()
    assert [text for text in told if "billed with your subscription" in text] == [
        "The $1.00 of model usage your plan includes this month is used up. Your assistant goes on: what it uses "
        "from now on is billed with your subscription, up to your cap of $3.00 (/usage)."]  # told once
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


async def test_the_usage_views_show_the_included_amount_and_what_is_billed_beyond_it(caps, sessions) -> None:
    billed, stopped = await subscriber(sessions, "pro"), await subscriber(sessions, "basic")
    for user in (billed, stopped):
        await spend(sessions, user, 1.5)
        await spend(sessions, user, 4.0, key_source=KEY_OWN)  # not on ClawFleet's key: neither included nor billed
    today = datetime.now(UTC).date()
    billed_standing, stopped_standing = await caps.standing(billed.id), await caps.standing(stopped.id)
    assert billed_standing.overage_micro_usd == 500_000
    billed_words = "Included in your plan: $1.00 on ClawFleet's key; beyond it, billed so far this month: $0.50."
    assert billed_words in standing_lines(billed_standing, today)  # the bot's /usage
    assert cap_meter(billed_standing, today)["included"] == billed_words  # the web usage panel
    body = standing_body(billed_standing, today)  # the REST API's month
    assert (body.included_usd, body.included_spent_usd, body.overage_billed, body.overage_usd) == (1, 1.5, True, 0.5)
    assert not standing_body(stopped_standing, today).overage_billed
    assert "Included in your plan: $1.00 on ClawFleet's key, $1.00 of it used this month." in \
        standing_lines(stopped_standing, today)
