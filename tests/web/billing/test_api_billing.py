"""The billing API and the Stripe webhook with billing on, over the fake Stripe: plans, a create
that waits for payment and deploys once paid, Stripe down, and webhook signatures refused."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from db.models import AuditLog, Instance, Subscription, WebhookEvent
from tests.fakes.stripe.events import sign
from tests.support.api_client import Api
from tests.support.billing import WEBHOOK_SECRET

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"


async def _create(api: Api, telegram, **extra) -> tuple[int, dict]:
    bot = telegram.add_bot()
    return await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY,
                                                     "telegram_bot_token": bot.token, "telegram_user_id": 4242,
                                                     **extra})


async def test_plans_are_listed_with_the_default(api: Api) -> None:
    status, body = await api.call("GET", "/api/billing/plans")
    assert status == 200 and body["default"] == "personal"
    assert [(p["id"], p["instances"], p["default"]) for p in body["plans"]] == [("personal", 1, True), ("team", 3, False)]
    assert body["plans"][1]["trial_days"] == 7 and body["plans"][0]["price_label"] == "$9 / month"


async def test_a_create_waits_for_payment_then_deploys_once_paid(api: Api, telegram, stripe_fake, sessions) -> None:
    await api.sign_up()
    status, body = await api.call("GET", "/api/billing/subscription")
    assert status == 200 and body["status"] is None and body["entitled"] is False and body["payment_failed"] is False
    status, created = await _create(api, telegram, plan="personal")
    assert status == 202, created
    assert created["status"] == "awaiting_payment" and created["checkout_url"] and created["checkout_error"] is None
    await stripe_fake.pay(created["checkout_url"])
    running = await api.wait_status(created["id"], "running", timeout=30)
    assert running["id"] == created["id"]
    status, body = await api.call("GET", "/api/billing/subscription")
    assert body["entitled"] is True and body["plan"]["id"] == "personal" and body["status"] == "active"
    assert body["over_limit"] is False and body["running"] == 1
    status, again = await api.call("POST", "/api/billing/checkout", {})
    assert status == 409 and again["error"]["field"] == "plan"
    status, cancelled = await api.call("POST", "/api/billing/cancel")
    assert status == 200 and cancelled["cancel_at_period_end"] is True and cancelled["entitled"] is True
    status, kept = await api.call("POST", "/api/billing/keep")
    assert status == 200 and kept["cancel_at_period_end"] is False
    status, portal = await api.call("POST", "/api/billing/portal")
    assert status == 200 and portal["url"].startswith("http")


async def test_a_create_when_stripe_is_down_keeps_the_instance_waiting(api: Api, telegram, stripe_fake,
                                                                       sessions) -> None:
    await api.sign_up()
    stripe_fake.fail_next("/v1/customers", 503)
    stripe_fake.fail_next("/v1/customers", 503)
    stripe_fake.fail_next("/v1/customers", 503)
    status, created = await _create(api, telegram)
    assert status == 202, created
    assert created["status"] == "awaiting_payment" and created["checkout_url"] is None
    assert created["checkout_error"]["code"] == "unavailable" and "pay later" in created["checkout_error"]["message"]
    status, listed = await api.call("GET", "/api/instances")
    assert [i["status"] for i in listed["instances"]] == ["awaiting_payment"]
    status, link = await api.call("POST", "/api/billing/checkout", {"plan": "team"})
    assert status == 200 and link["url"]


async def test_bodies_are_checked_at_the_edge(api: Api, telegram, sessions) -> None:
    await api.sign_up()
    status, body = await api.call("POST", "/api/billing/checkout", {"plan": "gold"})
    assert status == 400 and body["error"]["field"] == "plan" and "personal" in body["error"]["message"]
    status, body = await api.call("POST", "/api/billing/checkout", {"plan": 3})
    assert status == 400 and body["error"]["field"] == "plan"
    status, body = await api.call("POST", "/api/billing/plan", {})
    assert status == 400 and body["error"]["field"] == "plan"
    status, body = await api.call("POST", "/api/billing/checkout", {"plna": "team"})
    assert status == 400 and body["error"]["field"] == "plna"
    status, body = await _create(api, telegram, plan="gold")
    assert status == 400 and body["error"]["field"] == "plan"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Instance)) == 0
    status, body = await api.call("POST", "/api/billing/cancel")
    assert status == 409 and "no active subscription" in body["error"]["message"]
    api.token = None
    assert (await api.call("GET", "/api/billing/subscription"))[0] == 401


async def _recorded(sessions) -> tuple[int, int]:
    async with sessions() as session:
        events = await session.scalar(select(func.count()).select_from(WebhookEvent))
        audits = await session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action.like("billing.%")))
    return events, audits


async def _post_webhook(api: Api, body: bytes, headers: dict) -> tuple[int, dict]:
    async with api.http.post(api.url("/api/webhooks/stripe"), data=body,
                             headers={"Content-Type": "application/json", **headers}) as response:
        return response.status, await response.json()


async def test_webhook_signatures_are_refused_and_nothing_is_recorded(api: Api, sessions) -> None:
    event = json.dumps({"id": "evt_web_1", "type": "customer.subscription.updated", "object": "event",
                        "data": {"object": {"id": "sub_nobody", "object": "subscription"}}}).encode()
    now = int(time.time())
    refused = {
        "missing": {},
        "tampered": {"Stripe-Signature": sign(event.replace(b"sub_nobody", b"sub_someone"), WEBHOOK_SECRET)},
        "wrong secret": {"Stripe-Signature": sign(event, "whsec_not_ours")},
        "stale": {"Stripe-Signature": sign(event, WEBHOOK_SECRET, timestamp=now - 3600)},
    }
    for why, headers in refused.items():
        status, body = await _post_webhook(api, event, headers)
        assert status == 400, (why, body)
        assert body["error"]["field"] in ("Stripe-Signature", "body"), why
    assert await _recorded(sessions) == (0, 0)
    status, body = await _post_webhook(api, event, {"Stripe-Signature": sign(event, WEBHOOK_SECRET)})
    assert status == 503 and body["error"]["code"] == "unavailable"  # sub_nobody is not in Stripe: read fails
    assert (await _recorded(sessions))[0] == 0


async def test_a_signed_event_about_nobody_is_received_and_ignored(api: Api, sessions) -> None:
    event = json.dumps({"id": "evt_web_2", "type": "customer.created", "object": "event",
                        "data": {"object": {"id": "cus_x", "object": "customer"}}}).encode()
    signature = {"Stripe-Signature": sign(event, WEBHOOK_SECRET)}
    assert await _post_webhook(api, event, signature) == (200, {"received": True, "outcome": "ignored"})
    assert await _post_webhook(api, event, signature) == (200, {"received": True, "outcome": "duplicate"})


async def test_a_webhook_body_too_large_is_413(api: Api) -> None:
    status, body = await _post_webhook(api, b"{" + b" " * (1 << 20) + b"}", {"Stripe-Signature": "t=1,v1=00"})
    assert status == 413


async def _subscribed(api: Api, telegram, stripe_fake) -> dict:
    await api.sign_up()
    status, created = await _create(api, telegram)
    assert status == 202 and created["checkout_url"], created
    await stripe_fake.pay(created["checkout_url"])
    return await api.wait_status(created["id"], "running", timeout=30)


async def test_account_deletion_waits_while_stripe_cannot_end_the_subscription(api: Api, telegram, stripe_fake,
                                                                               sessions) -> None:
    await _subscribed(api, telegram, stripe_fake)
    for _ in range(3):  # the library's own retries too
        stripe_fake.fail_next("/v1/subscriptions", 503)
    status, body = await api.call("DELETE", "/api/me", {"password": "correct horse battery"})
    assert status == 503 and body["error"]["code"] == "unavailable"
    assert (await api.call("GET", "/api/me"))[0] == 200
    assert [i["status"] for i in (await api.call("GET", "/api/instances"))[1]["instances"]] == ["running"]
    status, _ = await api.call("DELETE", "/api/me", {"password": "correct horse battery"})
    assert status == 204
    async with sessions() as session:
        subscription = await session.scalar(select(Subscription))
    assert subscription is None or subscription.status == "canceled"
    assert [r for r in stripe_fake.requests if r.method == "DELETE" and r.path.startswith("/v1/subscriptions/")]
