"""Billing against a Stripe-compatible server over HTTP (localstripe behind the fake front),
driven through the real `stripe` library, with the platform over in-memory gateways: checkout,
verified webhooks acted on once and in any order, the outbox, the sync, cancelling, plan changes.

Stripe's deliveries go to the platform's own endpoint, /api/webhooks/stripe."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from billing import service as service_module
from db.errors import Conflict, InvalidInput, LimitReached, Unavailable
from db.models import AuditLog, Instance, OutboxEffect, Subscription, User, WebhookEvent
from db.status import Status
from tests.support.api_client import Api, running_api
from tests.support.billing import WEBHOOK_SECRET, with_example_prices
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import RecordingNotifier, eventually

KEY = "sk-proj-billingBILLING0123456789abcd"


@dataclass
class Billed:
    api: Api
    notifier: RecordingNotifier
    runtime: MemoryRuntime
    hook_url: str  # where Stripe's deliveries reach the platform

    @property
    def billing(self):
        return self.api.platform.billing

    async def person(self) -> User:
        await self.api.sign_up()
        async with self.api.platform.sessions() as session:
            return (await session.scalars(select(User).order_by(User.created_at.desc()))).first()

    async def waiting_instance(self, user: User) -> Instance:
        instance = await self.api.platform.instances.create(user, model_provider="openai", api_key=KEY)
        assert instance.status == Status.AWAITING_PAYMENT
        return instance

    async def status(self, instance: Instance) -> str:
        async with self.api.platform.sessions() as session:
            return (await session.get(Instance, instance.id)).status

    async def count(self, model, *where) -> int:
        async with self.api.platform.sessions() as session:
            return await session.scalar(select(func.count()).select_from(model).where(*where))

    async def wait(self, instance: Instance, status: str) -> None:
        await self.api.wait_status(str(instance.id), status, timeout=20)


@pytest.fixture
async def billed(settings_for, sessions, stripe_fake):
    """The platform with billing on, its notifier, and a webhook endpoint Stripe delivers to."""
    overrides = await with_example_prices(stripe_fake)
    runtime, notifier = MemoryRuntime(), RecordingNotifier()
    settings = settings_for(**overrides, lease_ttl_s=3)
    async with running_api(settings, runtime, notifier) as api:
        hook_url = api.url("/api/webhooks/stripe")
        stripe_fake.configure_webhook(hook_url, WEBHOOK_SECRET)
        yield Billed(api, notifier, runtime, hook_url)
    await runtime.close()


def session_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def event_of(stripe_fake, kind: str) -> str:
    return next(event["id"] for event in reversed(stripe_fake.events) if event["type"] == kind)


async def test_a_waiting_instance_deploys_once_checkout_is_paid_and_the_owner_is_told(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    assert billed.runtime.starts == []

    url = await billed.billing.checkout_url(user, "personal", via="bot")
    [session] = stripe_fake.checkout_sessions.values()
    assert url == session["url"]
    assert session["client_reference_id"] == str(user.id) and session["mode"] == "subscription"
    assert session["success_url"].endswith("/billing/done?via=bot&session_id={CHECKOUT_SESSION_ID}")
    assert await billed.billing.checkout_url(user, "personal", via="bot") == url  # asked again: the same page
    assert len(stripe_fake.checkout_sessions) == 1

    await stripe_fake.pay(session["id"])
    assert stripe_fake.deliveries[-1].status == 200
    await billed.wait(instance, Status.RUNNING)
    view = await billed.billing.view(user)
    assert view.entitled and view.plan.id == "personal" and view.status == "active"
    assert view.current_period_end is not None and not view.cancel_at_period_end
    assert any("Personal plan is active" in text for _, text in billed.notifier.sent)
    assert (user.id, instance.id, "Deploying your assistant") in billed.notifier.followed
    [started] = billed.runtime.starts
    assert (started.memory_mb, started.cpus) == (1536, 1.0)  # the Personal plan's
    async with billed.api.platform.sessions() as db:
        owner = await db.get(User, user.id)
        actions = set(await db.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)))
    assert owner.stripe_customer_id == stripe_fake.checkout_sessions[session["id"]]["customer"]
    assert {"billing.checkout", "billing.subscription", "instance.start_paid"} <= actions
    with pytest.raises(Conflict, match="subscription already"):
        await billed.billing.checkout_url(user, "team")


async def test_the_same_event_delivered_twice_at_once_is_processed_once(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    stripe_fake.configure_webhook("http://127.0.0.1:9/lost", WEBHOOK_SECRET)  # the first delivery is lost
    await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    stripe_fake.configure_webhook(billed.hook_url, WEBHOOK_SECRET)
    event_id = event_of(stripe_fake, "checkout.session.completed")

    assert await asyncio.gather(stripe_fake.redeliver(event_id), stripe_fake.redeliver(event_id)) == [200, 200]
    await billed.wait(instance, Status.RUNNING)
    assert await billed.count(WebhookEvent, WebhookEvent.event_id == event_id) == 1
    assert await billed.count(OutboxEffect, OutboxEffect.kind == "start_paid") == 1
    assert await stripe_fake.redeliver(event_id) == 200  # a third, later: nothing more
    await billed.api.platform.manager.wait_idle()
    assert len(billed.runtime.starts) == 1
    assert sum("plan is active" in text for _, text in billed.notifier.sent) == 1


async def test_deleted_before_completed_ends_cancelled_with_no_gateway(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    stripe_fake.configure_webhook("http://127.0.0.1:9/held", WEBHOOK_SECRET)  # Stripe holds both back
    session = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await stripe_fake.cancel_subscription(session["subscription"])
    stripe_fake.configure_webhook(billed.hook_url, WEBHOOK_SECRET)

    assert await stripe_fake.redeliver(event_of(stripe_fake, "customer.subscription.deleted")) == 200
    assert await stripe_fake.redeliver(event_of(stripe_fake, "checkout.session.completed")) == 200
    await billed.api.platform.outbox.run_once()
    await billed.api.platform.manager.wait_idle()
    assert await billed.status(instance) == Status.AWAITING_PAYMENT
    assert billed.runtime.starts == [] and billed.runtime.gateways == {}
    view = await billed.billing.view(user)
    assert view.status == "canceled" and not view.entitled


async def test_a_failure_while_acting_answers_5xx_changes_nothing_and_the_retry_succeeds(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    url = await billed.billing.checkout_url(user)
    for _ in range(3):  # the request and the library's two retries
        stripe_fake.fail_next("/v1/subscriptions", 500)
    await stripe_fake.pay(session_id(url))
    assert stripe_fake.deliveries[-1].status == 503  # Stripe did not answer the re-read: try later
    assert await billed.count(WebhookEvent) == 0 and await billed.count(Subscription) == 0
    assert await billed.count(OutboxEffect) == 0
    assert await billed.status(instance) == Status.AWAITING_PAYMENT

    assert await stripe_fake.redeliver(stripe_fake.deliveries[-1].event_id) == 200
    await billed.wait(instance, Status.RUNNING)


async def test_an_ended_subscription_suspends_and_a_new_one_brings_the_same_instance_back(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    first = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await billed.wait(instance, Status.RUNNING)

    await stripe_fake.cancel_subscription(first["subscription"])
    await billed.wait(instance, Status.SUSPENDED)
    assert billed.runtime.gateways == {}
    async with billed.api.platform.sessions() as db:
        row = await db.get(Instance, instance.id)
    assert "subscription has ended" in row.status_reason
    assert any("kept for 30 days" in text for _, text in billed.notifier.sent)
    assert billed.runtime.removed == {}  # its data stays
    with pytest.raises(Conflict, match="suspended"):
        await billed.api.platform.instances.start(user, instance.id)

    await stripe_fake.pay(session_id(await billed.billing.checkout_url(user, "team")))
    await billed.wait(instance, Status.RUNNING)
    assert billed.runtime.starts[-1].instance_id == instance.id and billed.runtime.starts[-1].memory_mb == 2048
    assert await billed.count(Subscription, Subscription.user_id == user.id) == 2


async def test_a_failed_payment_keeps_it_running_says_so_and_a_later_payment_clears_it(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    session = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await billed.wait(instance, Status.RUNNING)

    await stripe_fake.fail_payment(session["subscription"])
    await eventually(lambda: any("did not go through" in text for _, text in billed.notifier.sent))
    view = await billed.billing.view(user)
    assert view.payment_failed and view.entitled and await billed.status(instance) == Status.RUNNING

    await stripe_fake.renew_subscription(session["subscription"])
    await eventually(lambda: any("payment went through" in text for _, text in billed.notifier.sent))
    assert not (await billed.billing.view(user)).payment_failed


async def test_the_sync_finds_a_subscription_whose_webhook_was_lost(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    stripe_fake.configure_webhook("http://127.0.0.1:9/lost", WEBHOOK_SECRET)
    await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    assert await billed.status(instance) == Status.AWAITING_PAYMENT

    assert await billed.billing.sync_once() == 1
    await billed.wait(instance, Status.RUNNING)
    async with billed.api.platform.sessions() as db:
        [entry] = list(await db.scalars(select(AuditLog).where(AuditLog.action == "billing.subscription")))
    assert entry.actor == "sync" and entry.details["changed"]["status"][1] == "active"
    assert await billed.billing.sync_once() == 1  # read again: nothing drifted, nothing queued
    assert await billed.count(AuditLog, AuditLog.action == "billing.subscription") == 1


async def test_a_checkout_retried_after_a_timeout_makes_one_session(billed, stripe_fake):
    user = await billed.person()
    await billed.billing.checkout_url(user)  # the customer exists now
    stripe_fake.checkout_sessions.clear()
    stripe_fake.delay_next("/v1/checkout/sessions", 8)  # longer than the client's 5 s timeout
    started = len(stripe_fake.requests_to("POST", "/v1/checkout/sessions"))
    url = await billed.billing.checkout_url(user, "team")
    posts = stripe_fake.requests_to("POST", "/v1/checkout/sessions")[started:]
    assert len(posts) == 2 and posts[0].idempotency_key == posts[1].idempotency_key and posts[1].replayed
    assert len(stripe_fake.checkout_sessions) == 1 and url == next(iter(stripe_fake.checkout_sessions.values()))["url"]


async def test_stripe_down_is_a_clear_message_and_leaves_nothing_behind(billed, stripe_fake):
    user = await billed.person()
    for _ in range(3):
        stripe_fake.fail_next("/v1/customers", 503)
    with pytest.raises(Unavailable, match="Payments are not answering right now; nothing was charged"):
        await billed.billing.checkout_url(user)
    async with billed.api.platform.sessions() as db:
        assert (await db.get(User, user.id)).stripe_customer_id is None
    assert stripe_fake.checkout_sessions == {}
    with pytest.raises(InvalidInput) as refused:
        await billed.billing.checkout_url(user, "platinum")
    assert refused.value.field == "plan" and "personal, team" in refused.value.message


async def test_cancel_at_period_end_and_keeping_it(billed, stripe_fake):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await billed.wait(instance, Status.RUNNING)

    view = await billed.billing.cancel(user)
    assert view.cancel_at_period_end and view.entitled  # runs until the paid period ends
    assert await billed.status(instance) == Status.RUNNING
    view = await billed.billing.keep(user)
    assert not view.cancel_at_period_end
    async with billed.api.platform.sessions() as db:
        actions = list(await db.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)))
    assert "billing.cancel" in actions and "billing.resume" in actions


async def test_a_downgrade_made_on_stripe_asks_which_to_stop_and_stops_nothing(billed, stripe_fake, stripe_client):
    user = await billed.person()
    first = await billed.waiting_instance(user)
    session = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user, "team")))
    await billed.wait(first, Status.RUNNING)
    second = await billed.api.platform.instances.create(user, model_provider="openai", api_key=KEY)
    await billed.wait(second, Status.RUNNING)

    subscription = await stripe_client.v1.subscriptions.retrieve_async(session["subscription"])
    item = subscription["items"]["data"][0]["id"]
    await stripe_client.v1.subscriptions.update_async(  # as the Customer Portal would
        session["subscription"], {"items": [{"id": item, "price": "price_personal"}]})
    await stripe_fake.send("customer.subscription.updated", session["subscription"])
    await eventually(lambda: billed.notifier.offers)
    [(owner, offers)] = billed.notifier.offers
    assert owner == user.id and {offer.action for offer in offers} == {"stop"}
    assert {offer.instance_id for offer in offers} == {first.id, second.id}
    assert any("Choose which to stop: nothing stops until you do" in text for _, text in billed.notifier.sent)
    view = await billed.billing.view(user)
    assert view.plan.id == "personal" and view.over_limit and view.running == 2
    assert await billed.status(first) == await billed.status(second) == Status.RUNNING  # nothing stopped yet

    await billed.api.platform.instances.stop(user, second.id)
    await billed.wait(second, Status.STOPPED)
    assert not (await billed.billing.view(user)).over_limit
    with pytest.raises(LimitReached, match="Personal plan allows 1 assistant"):
        await billed.api.platform.instances.start(user, second.id)
    with pytest.raises(LimitReached, match="Personal plan allows 1 assistant"):
        await billed.api.platform.instances.create(user, model_provider="openai", api_key=KEY)


async def test_a_plan_change_asked_for_here_is_made_in_stripe_and_not_announced_twice(billed, stripe_fake,
                                                                                     stripe_client):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    session = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await billed.wait(instance, Status.RUNNING)

    view = await billed.billing.change_plan(user, "team")
    assert view.plan.id == "team" and not view.over_limit
    subscription = await stripe_client.v1.subscriptions.retrieve_async(session["subscription"])
    assert subscription["items"]["data"][0]["plan"]["id"] == "price_team"
    with pytest.raises(Conflict, match="on the Team plan already"):
        await billed.billing.change_plan(user, "team")
    await billed.api.platform.outbox.run_once()
    assert billed.notifier.offers == []  # the front end that asked shows what follows
    async with billed.api.platform.sessions() as db:
        actions = list(await db.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)))
    assert "billing.change_plan" in actions
    await billed.api.platform.instances.restart(user, instance.id)
    await billed.wait(instance, Status.RUNNING)
    await billed.api.platform.manager.wait_idle()
    assert billed.runtime.starts[-1].memory_mb == 2048  # the Team plan's, from the restart on


async def test_deleting_the_account_cancels_its_subscription_in_stripe(billed, stripe_fake, stripe_client):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    session = await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    await billed.wait(instance, Status.RUNNING)
    await billed.billing.cancel_for_deletion(user)
    subscription = await stripe_client.v1.subscriptions.retrieve_async(session["subscription"])
    assert subscription.status == "canceled"
    assert (await billed.billing.view(user)).status == "canceled"


async def test_a_failure_inside_the_transaction_rolls_everything_back(billed, stripe_fake, monkeypatch):
    user = await billed.person()
    instance = await billed.waiting_instance(user)
    real = service_module.plan_effects
    failures = []

    def failing_once(*args, **kwargs):
        queued = real(*args, **kwargs)  # the effects are in the session, then the handler fails
        if not failures:
            failures.append(queued)
            raise RuntimeError("the handler broke after writing")
        return queued

    monkeypatch.setattr(service_module, "plan_effects", failing_once)
    await stripe_fake.pay(session_id(await billed.billing.checkout_url(user)))
    assert stripe_fake.deliveries[-1].status == 500 and failures == [["start_paid"]]
    for model in (WebhookEvent, Subscription, OutboxEffect):
        assert await billed.count(model) == 0, model
    assert await billed.count(AuditLog, AuditLog.action == "billing.subscription") == 0

    assert await stripe_fake.redeliver(stripe_fake.deliveries[-1].event_id) == 200
    await billed.wait(instance, Status.RUNNING)
