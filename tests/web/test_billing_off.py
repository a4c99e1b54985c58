"""With billing off (no CLAWFLEET_STRIPE_SECRET_KEY) the billing routes answer 404 billing_off,
the webhook too, and the pages say nothing of billing but the placeholder."""

from __future__ import annotations

import pytest

from tests.support.api_client import Api
from tests.support.web_client import WebUser, serving_pages

ROUTES = [("GET", "/api/billing/plans"), ("GET", "/api/billing/subscription"), ("POST", "/api/billing/checkout"),
          ("POST", "/api/billing/portal"), ("POST", "/api/billing/cancel"), ("POST", "/api/billing/keep"),
          ("POST", "/api/billing/plan"), ("POST", "/api/webhooks/stripe")]


@pytest.fixture
async def api(settings_for, sessions):
    async with serving_pages(settings_for()) as api:
        await api.sign_up()
        yield api


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_billing_routes_say_billing_is_off(api: Api, method: str, path: str) -> None:
    status, body = await api.call(method, path, {} if method == "POST" else None)
    assert status == 404 and body["error"]["code"] == "billing_off"
    assert body["error"]["message"] == "This ClawFleet runs without billing: everything is included."


async def test_a_plan_on_create_is_refused_and_nothing_else_changes(api: Api, telegram) -> None:
    status, body = await api.call("POST", "/api/instances", {"model_provider": "openai", "plan": "personal",
                                                             "api_key": "sk-proj-canaryCANARYcanary0123456789"})
    assert status == 400 and body["error"]["field"] == "plan"
    bot = telegram.add_bot()
    status, body = await api.call("POST", "/api/instances", {"model_provider": "openai", "telegram_bot_token": bot.token,
                                                             "api_key": "sk-proj-canaryCANARYcanary0123456789"})
    assert status == 202 and body["status"] == "provisioning" and body["checkout_url"] is None


async def test_pages_show_no_billing_but_the_placeholder(api: Api) -> None:
    person = WebUser(api)
    try:
        await person.sign_up("off@example.com")
        billing = await person.get("/billing")
        assert billing.status == 200 and billing.has("does not charge for assistants")
        assert not billing.has("Subscribe")
        dashboard = await person.get("/dashboard")
        assert 'id="payment-banner"' not in dashboard.text
        review = await person.get("/onboard/review")
        assert not review.has("Subscribe and deploy")
        assert (await person.get("/billing/done?via=web")).status == 404
        assert (await person.get("/billing/cancelled")).status == 404
    finally:
        await person.close()
