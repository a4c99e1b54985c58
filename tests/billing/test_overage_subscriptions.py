"""Billed overage through the whole platform against the fake Stripe over HTTP (the real stripe
library): a billed plan's Checkout carries its metered price as a second line item, the
subscription is still read as the plan's (the metered item names no plan), plan changes add,
swap or remove the metered item, and the platform's outbox sends the reporter's meter events."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from billing.overage import OverageReporter
from db.models import Subscription, User
from db.status import Status
from tests.support.api_client import running_api
from tests.support.billing import WEBHOOK_SECRET, spend, with_billed_overage_prices
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import RecordingNotifier, eventually

KEY = "sk-proj-billingBILLING0123456789abcd"


@pytest.fixture
def report_interval_s() -> float:
    return 300


@pytest.fixture
async def api(settings_for, sessions, stripe_fake, tmp_path, report_interval_s):
    overrides = await with_billed_overage_prices(stripe_fake, tmp_path)
    runtime = MemoryRuntime()
    settings = settings_for(**overrides, lease_ttl_s=3, overage_report_interval_s=report_interval_s)
    async with running_api(settings, runtime, RecordingNotifier()) as api:
        stripe_fake.configure_webhook(api.url("/api/webhooks/stripe"), WEBHOOK_SECRET)
        yield api
    await runtime.close()


async def subscribed(api, stripe_fake, plan: str) -> tuple[User, dict]:
    """A person whose assistant waited for payment, and the paid Checkout Session of `plan`."""
    await api.sign_up()
    async with api.platform.sessions() as session:
        user = (await session.scalars(select(User).order_by(User.created_at.desc()))).first()
    instance = await api.platform.instances.create(user, model_provider="openai", api_key=KEY)
    url = await api.platform.billing.checkout_url(user, plan)
    paid = await stripe_fake.pay(url.rstrip("/").rsplit("/", 1)[-1])
    await api.wait_status(str(instance.id), Status.RUNNING, timeout=20)
    return user, paid


def prices_of(subscription) -> list[tuple[str, str]]:
    return [(item["price"]["id"], item["price"]["recurring"]["usage_type"]) for item in subscription["items"]["data"]]


async def test_a_billed_plans_checkout_adds_its_metered_price_and_the_subscription_is_the_plans(
        api, stripe_fake, stripe_client) -> None:
    user, paid = await subscribed(api, stripe_fake, "pro")
    [create] = stripe_fake.requests_to("POST", "/v1/checkout/sessions")
    assert create.params["line_items"] == [{"price": "price_pro", "quantity": "1"}, {"price": "price_pro_overage"}]
    lines = await stripe_client.v1.checkout.sessions.line_items.list_async(paid["id"])
    assert [(line.price.id, line.quantity) for line in lines.data] == [("price_pro", 1), ("price_pro_overage", None)]
    subscription = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    assert prices_of(subscription) == [("price_pro", "licensed"), ("price_pro_overage", "metered")]

    view = await api.platform.billing.view(user)
    assert view.entitled and view.plan.id == "pro"
    async with api.platform.sessions() as session:
        row = await session.scalar(select(Subscription).where(Subscription.user_id == user.id))
    assert (row.plan, row.stripe_price_id) == ("pro", "price_pro")
    await api.platform.billing.sync_once()  # read again from Stripe: still the plan's price
    async with api.platform.sessions() as session:
        assert (await session.get(Subscription, row.id)).stripe_price_id == "price_pro"


async def test_plan_changes_remove_add_and_swap_the_metered_item(api, stripe_fake, stripe_client) -> None:
    user, paid = await subscribed(api, stripe_fake, "pro")
    assert (await api.platform.billing.change_plan(user, "basic")).plan.id == "basic"
    subscription = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    assert prices_of(subscription) == [("price_basic", "licensed")]

    assert (await api.platform.billing.change_plan(user, "pro")).plan.id == "pro"
    subscription = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    assert prices_of(subscription) == [("price_pro", "licensed"), ("price_pro_overage", "metered")]
    metered_item = subscription["items"]["data"][1]["id"]

    assert (await api.platform.billing.change_plan(user, "max")).plan.id == "max"
    subscription = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    assert prices_of(subscription) == [("price_max", "licensed"), ("price_max_overage", "metered")]
    assert subscription["items"]["data"][1]["id"] == metered_item  # the same item, on the new plan's price


async def billed(stripe_fake, stripe_client, customer: str) -> list[float]:
    [meter] = stripe_fake.meters.meters.values()
    now = int(time.time())
    summaries = await stripe_client.v1.billing.meters.event_summaries.list_async(
        meter["id"], {"customer": customer, "start_time": now - 3600, "end_time": now + 3600})
    return [summary.aggregated_value for summary in summaries.data]


async def test_the_platforms_outbox_sends_the_overage_to_the_meter(api, stripe_fake, stripe_client) -> None:
    user, paid = await subscribed(api, stripe_fake, "pro")
    await spend(api.platform.sessions, user, 1.25)
    reporter = OverageReporter(api.platform.sessions, api.platform.billing.plans)
    assert [report.value for report in await reporter.run_once()] == [25]
    await api.platform.outbox.run_once()
    assert await billed(stripe_fake, stripe_client, paid["customer"]) == [25]


@pytest.mark.parametrize("report_interval_s", [0.3])
async def test_the_platform_reports_overage_by_itself_every_interval(api, stripe_fake, stripe_client) -> None:
    user, paid = await subscribed(api, stripe_fake, "pro")
    await spend(api.platform.sessions, user, 1.1)

    async def reported() -> bool:
        return await billed(stripe_fake, stripe_client, paid["customer"]) == [10]

    await eventually(reported, timeout=15)
    await spend(api.platform.sessions, user, 0.07)

    async def more() -> bool:
        return await billed(stripe_fake, stripe_client, paid["customer"]) == [17]

    await eventually(more, timeout=15)
    assert [r.params["payload"]["value"] for r in stripe_fake.requests_to("POST", "/v1/billing/meter_events")] == \
        ["10", "7"]
