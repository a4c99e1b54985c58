"""Billed overage end to end below the web: usage rows in the real database (SQLite and
PostgreSQL), the reporter, the outbox worker and the real stripe library sending meter events to
the fake Stripe over HTTP, whose meter sums what Stripe would bill. Exactly the cents past the
included amount are billed, once, however often the reporter runs or an effect is retried."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from billing.outbox import OutboxConfig, OutboxWorker
from billing.overage import REPORT_OVERAGE, MeterEvents, OverageReporter, identifier
from billing.plans import parse_plans
from billing.stripe_client import StripeApi, StripeConfig
from db.models import KEY_OWN, OutboxEffect, OverageReport
from db.months import month_of
from tests.support.billing import BILLED_PLANS, OVERAGE_EVENT, spend, subscriber
from tests.support.stripe_fixtures import TEST_SECRET_KEY


@pytest.fixture
async def meter(stripe_fake) -> dict:
    meter = await stripe_fake.create_meter(OVERAGE_EVENT)
    await stripe_fake.create_metered_price("Model usage", 1, meter["id"], price_id="price_pro_overage")
    return meter


@pytest.fixture
async def stripe_api(stripe_fake):
    api = StripeApi(StripeConfig(SecretStr(TEST_SECRET_KEY), stripe_fake.api_url, timeout_s=1, retries=0))
    yield api
    await api.close()


@pytest.fixture
def reporter(sessions) -> OverageReporter:
    return OverageReporter(sessions, parse_plans(BILLED_PLANS))


@pytest.fixture
def worker(sessions, stripe_api) -> OutboxWorker:
    return OutboxWorker(sessions, MeterEvents(stripe_api, OVERAGE_EVENT).table(), OutboxConfig(), holder="test")


async def customer(stripe_fake) -> str:
    return (await stripe_fake.create_customer("someone@example.com"))["id"]


async def billed_cents(stripe_client, meter: dict, customer_id: str) -> float:
    """What the meter sums for the customer over the last and next day: what Stripe bills."""
    now = int(time.time())
    summaries = await stripe_client.v1.billing.meters.event_summaries.list_async(
        meter["id"], {"customer": customer_id, "start_time": now - 86400, "end_time": now + 86400})
    return sum(summary.aggregated_value for summary in summaries.data)


async def test_usage_past_the_included_amount_is_billed_in_cents_once(
        sessions, stripe_fake, stripe_client, meter, reporter, worker) -> None:
    cus = await customer(stripe_fake)
    user = await subscriber(sessions, "pro", cus)
    await spend(sessions, user, 0.6)
    await spend(sessions, user, 0.905)  # $1.505 on the platform's key: 50 whole cents past the $1
    await spend(sessions, user, 7.0, key_source=KEY_OWN)  # on their own key: not ClawFleet's to bill

    reports = await reporter.run_once()
    assert [(r.user_id, r.cents, r.value) for r in reports] == [(user.id, 50, 50)]
    assert await worker.run_once() == 1
    assert await billed_cents(stripe_client, meter, cus) == 50
    sent = stripe_fake.requests_to("POST", "/v1/billing/meter_events")
    assert [r.params["identifier"] for r in sent] == [identifier(user.id, month_of(datetime.now(UTC).date()), 50)]
    assert sent[0].params["payload"] == {"stripe_customer_id": cus, "value": "50"}

    assert await reporter.run_once() == []  # nothing new: nothing sent
    assert await worker.run_once() == 0

    await spend(sessions, user, 0.234)  # $1.739: 73 cents in all, 23 more
    assert [r.value for r in await reporter.run_once()] == [23]
    await worker.run_once()
    assert await billed_cents(stripe_client, meter, cus) == 73
    assert len(stripe_fake.requests_to("POST", "/v1/billing/meter_events")) == 2
    async with sessions() as session:
        assert await session.scalar(select(OverageReport.reported_cents).where(OverageReport.user_id == user.id)) == 73


async def test_nothing_is_billed_on_a_stop_plan_within_the_included_amount_or_on_the_users_own_key(
        sessions, stripe_fake, stripe_client, meter, reporter, worker) -> None:
    stopped = await subscriber(sessions, "basic", await customer(stripe_fake))
    await spend(sessions, stopped, 2.5)
    within = await subscriber(sessions, "pro", await customer(stripe_fake))
    await spend(sessions, within, 1.009)  # under a cent past: nothing yet
    own = await subscriber(sessions, "pro", await customer(stripe_fake))
    await spend(sessions, own, 9.0, key_source=KEY_OWN)

    assert await reporter.run_once() == []
    assert await worker.run_once() == 0
    assert stripe_fake.requests_to("POST", "/v1/billing/meter_events") == []


async def test_a_retried_effect_whose_first_answer_was_lost_is_billed_once(
        sessions, stripe_fake, stripe_client, meter, reporter, worker) -> None:
    cus = await customer(stripe_fake)
    user = await subscriber(sessions, "pro", cus)
    await spend(sessions, user, 1.42)
    await reporter.run_once()
    stripe_fake.delay_next("/v1/billing/meter_events", 3)  # done at once; the answer comes after our timeout
    await worker.run_once()
    async with sessions() as session:
        effect = await session.scalar(select(OutboxEffect).where(OutboxEffect.kind == REPORT_OVERAGE))
        assert effect.done_at is None and effect.attempts == 1 and "Unavailable" in effect.last_error
        await session.execute(update(OutboxEffect).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    await worker.run_once()  # the retry: the same idempotency key and identifier
    async with sessions() as session:
        assert (await session.get(OutboxEffect, effect.id)).done_at is not None
    assert len(stripe_fake.meters.events) == 1
    assert await billed_cents(stripe_client, meter, cus) == 42


async def test_an_identifier_stripe_has_already_is_not_billed_again(sessions, stripe_fake, stripe_client, meter,
                                                                     stripe_api) -> None:
    cus = await customer(stripe_fake)
    assert await stripe_api.send_meter_event(OVERAGE_EVENT, customer=cus, value=30, identifier="report-1")
    other = StripeApi(StripeConfig(SecretStr("sk_test_another_key"), stripe_fake.api_url, retries=0))
    try:  # another API key: no idempotent replay, so Stripe's identifier rule decides
        assert not await other.send_meter_event(OVERAGE_EVENT, customer=cus, value=30, identifier="report-1")
    finally:
        await other.close()
    assert await billed_cents(stripe_client, meter, cus) == 30
