"""/billing, the onboarding's plan step and the Checkout return pages with billing on, over the
fake Stripe: plans to subscribe to, Stripe down shown beside its button, a subscription's page
after paying, cancel and keep, the payment-failed banner, and the return pages signed out."""

from __future__ import annotations

import re

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from db.models import Instance, Subscription, User
from db.types import utcnow
from tests.support.web_client import WebUser

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"


async def _to_review(person: WebUser, telegram, email: str):
    await person.sign_up(email)
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
    await person.submit("/onboard/key", {"api_key": OPENAI_KEY})
    bot = telegram.add_bot()
    return await person.submit("/onboard/telegram", {"telegram_bot_token": bot.token, "owner": "id",
                                                     "telegram_user_id": "4242"})


async def _wait_running(sessions, instance_id) -> None:
    async with asyncio.timeout(30):
        while True:
            async with sessions() as session:
                if (await session.get(Instance, instance_id, populate_existing=True)).status == "running":
                    return
            await asyncio.sleep(0.2)


async def test_billing_page_offers_plans_and_says_when_stripe_is_down(browser_for, stripe_fake) -> None:
    person = browser_for()
    await person.sign_up("plans@example.com")
    page = await person.get("/billing")
    assert page.status == 200 and page.has("Choose a plan") and page.has("Personal") and page.has("$29 / month")
    assert "form-action 'self' https://checkout.stripe.com" in page.headers["Content-Security-Policy"]
    for _ in range(3):
        stripe_fake.fail_next("/v1/customers", 503)
    refused = await person.post("/billing/checkout", {"plan": "team"}, csrf=page.csrf)
    assert refused.status == 503 and 'id="error-checkout-team"' in refused.text
    assert refused.has("Payments are not answering") and refused.has("Choose a plan")
    went = await person.post("/billing/checkout", {"plan": "team"}, csrf=page.csrf, follow=False)
    assert went.status == 303 and went.headers["Location"].startswith(stripe_fake.api_url.rsplit("/", 1)[0])


async def test_plan_step_subscribes_deploys_after_payment_and_the_billing_page_follows(
        browser_for, telegram, stripe_fake, sessions, api) -> None:
    person = browser_for()
    review = await _to_review(person, telegram, "wizard@example.com")
    assert review.has("Subscribe and deploy") and 'value="personal" checked' in review.text
    went = await person.post("/onboard/deploy", {"plan": "personal"}, csrf=review.csrf, follow=False)
    assert went.status == 303, went.text
    checkout = went.headers["Location"]
    async with sessions() as session:
        instance = await session.scalar(select(Instance))
    assert instance.status == "awaiting_payment"
    waiting = await person.get(f"/onboard/deploying/{instance.id}")
    assert waiting.has("Waiting for your payment to be confirmed") and "data-await-instance" in waiting.text
    await stripe_fake.pay(checkout)
    await _wait_running(sessions, instance.id)
    done = await person.get("/billing/done?via=web&session_id=cs_x")
    assert done.has("Payment received") and done.has("Your dashboard")
    billing = await person.get("/billing")
    assert billing.has("Your plan: Personal") and billing.has("Renews on") and billing.has("Manage billing")
    assert billing.has("Switch to Team")
    confirm = await person.get("/billing/cancel")
    assert confirm.has("Cancel your subscription?")
    cancelled = await person.post("/billing/cancel", {}, csrf=confirm.csrf)
    assert cancelled.has("Ends on") and cancelled.has("Keep my subscription")
    kept = await person.post("/billing/keep", {}, csrf=cancelled.csrf)
    assert kept.has("Your subscription continues") and kept.has("Renews on")


async def test_payment_failed_banner_and_return_pages_signed_out(browser_for, sessions, api) -> None:
    person = browser_for()
    await person.sign_up("late@example.com")
    async with sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "late@example.com"))
        session.add(Subscription(user_id=user_id, stripe_subscription_id="sub_late", status="past_due",
                                 plan="personal"))
        await session.commit()
    dashboard = await person.get("/dashboard")
    assert 'id="payment-banner"' in dashboard.text and dashboard.has("A payment failed")
    billing = await person.get("/billing")
    assert 'id="payment-failed"' in billing.text
    stranger = browser_for()
    done = await stranger.get("/billing/done?via=web&session_id=cs_test")
    assert done.status == 200 and done.has("Payment received") and done.has("not signed in")
    assert "late@example.com" not in done.text
    cancelled = await stranger.get("/billing/cancelled?via=bot")
    assert cancelled.status == 200 and cancelled.has("No payment was made")
    assert re.search(r"Sign in to choose a plan", cancelled.text)


async def _waiting_instance(person: WebUser, telegram, sessions, email: str) -> Instance:
    review = await _to_review(person, telegram, email)
    went = await person.post("/onboard/deploy", {"plan": "personal"}, csrf=review.csrf, follow=False)
    assert went.status == 303, went.text
    async with sessions() as session:
        return await session.scalar(select(Instance).join(User).where(User.email == email))


async def test_plan_step_when_checkout_fails_keeps_the_instance_to_pay_later(browser_for, telegram, stripe_fake,
                                                                             sessions) -> None:
    person = browser_for()
    review = await _to_review(person, telegram, "down@example.com")
    for _ in range(3):
        stripe_fake.fail_next("/v1/customers", 503)
    refused = await person.post("/onboard/deploy", {"plan": "team"}, csrf=review.csrf)
    assert refused.status == 503 and refused.has("Payments are not answering") and 'id="onboard-waiting"' in refused.text
    async with sessions() as session:
        instance = await session.scalar(select(Instance))
    assert instance.status == "awaiting_payment"
    page = await person.get(f"/instances/{instance.id}")
    assert page.has("Waiting for payment") and page.has("Pay and start it")
    went = await person.post(f"/instances/{instance.id}/pay", {"plan": "personal"}, csrf=page.csrf, follow=False)
    assert went.status == 303 and "/checkout/" in went.headers["Location"]


async def test_a_suspended_instance_says_until_when_its_data_is_kept(browser_for, telegram, stripe_fake,
                                                                     sessions) -> None:
    person = browser_for()
    instance = await _waiting_instance(person, telegram, sessions, "gone@example.com")
    async with sessions() as session:
        await session.execute(update(Instance).where(Instance.id == instance.id).values(status="suspended"))
        await session.commit()
        instance = await session.get(Instance, instance.id, populate_existing=True)
    page = await person.get(f"/instances/{instance.id}")
    kept = instance.updated_at + timedelta(days=30)
    assert page.has("Suspended: your subscription ended") and page.has(f"kept until {kept:%B} {kept.day}, {kept.year}")
    assert page.has("Subscribe")

    # suspended by the operator too: paying would not lift that, so no payment is offered
    async with sessions() as session:
        await session.execute(update(Instance).where(Instance.id == instance.id).values(
            admin_suspended_at=utcnow(), admin_suspended_from="running", status_reason="Suspended by the operator."))
        await session.commit()
    page = await person.get(f"/instances/{instance.id}")
    assert page.has("Suspended by the operator.") and not page.has("Subscribe") and not page.has("Pay and start it")
    went = await person.post(f"/instances/{instance.id}/pay", {"plan": "personal"}, csrf=page.csrf, follow=False)
    assert went.status == 303 and went.headers["Location"] == f"/instances/{instance.id}"  # not to Checkout


async def test_over_the_plan_lists_what_runs_with_a_stop_button_each(api, browser_for, telegram, stripe_fake,
                                                                     sessions) -> None:
    await api.sign_up("many@example.com")
    async with sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "many@example.com"))
        session.add(Subscription(user_id=user_id, stripe_subscription_id="sub_many", status="active", plan="team"))
        await session.commit()
    for _ in range(2):
        status, created = await api.call("POST", "/api/instances", {
            "model_provider": "openai", "api_key": OPENAI_KEY, "telegram_bot_token": telegram.add_bot().token})
        assert status == 202 and created["checkout_url"] is None, created
        await api.wait_status(created["id"], "running", timeout=30)
    async with sessions() as session:  # a downgrade, as Stripe would report it
        await session.execute(update(Subscription).where(Subscription.user_id == user_id).values(plan="personal"))
        await session.commit()
    person = browser_for()
    await person.submit("/login", {"email": "many@example.com", "password": "correct horse battery"})
    page = await person.get("/billing")
    assert page.has("Choose what to stop") and page.has("Nothing is stopped until you choose")
    assert len(re.findall(r'action="/instances/[0-9a-f-]{36}/stop"', page.text)) == 2


async def test_deleting_the_account_waits_while_stripe_is_down(browser_for, telegram, stripe_fake, sessions) -> None:
    person = browser_for()
    await _waiting_instance(person, telegram, sessions, "leave@example.com")
    async with sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "leave@example.com"))
        session.add(Subscription(user_id=user_id, stripe_subscription_id="sub_leave", status="active", plan="personal"))
        await session.commit()
    page = await person.get("/account/delete")
    for _ in range(3):
        stripe_fake.fail_next("/v1/subscriptions", 503)
    refused = await person.post("/account/delete", {"password": "correct horse battery"}, csrf=page.csrf)
    assert refused.status == 503 and refused.has("Payments are not answering")
    async with sessions() as session:
        assert await session.get(User, user_id) is not None
        assert await session.scalar(select(Instance.id).where(Instance.user_id == user_id)) is not None
