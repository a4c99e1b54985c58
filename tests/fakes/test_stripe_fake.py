"""The fake Stripe (tests/fakes/stripe) driven through the real stripe library, as billing
code will drive it: localstripe's objects behind it, Checkout, Portal, idempotency, faults and
signed webhooks in front."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
import stripe
from aiohttp import web

from tests.fakes.stripe import FakeStripe, StripeError, parse_form, sign
from tests.fakes.stripe.serving import serving
from tests.support.stripe_fixtures import TEST_SECRET_KEY

WEBHOOK_SECRET = "whsec_test_clawfleet"


@dataclass
class Receiver:
    """A webhook endpoint on loopback that keeps what arrives and answers `statuses` in turn (then 200)."""

    url: str = ""
    received: list[tuple[bytes, str]] = field(default_factory=list)  # raw body, Stripe-Signature
    statuses: list[int] = field(default_factory=list)

    def events(self) -> list[stripe.Event]:
        return [stripe.Webhook.construct_event(body, header, WEBHOOK_SECRET) for body, header in self.received]


@pytest.fixture
async def receiver(stripe_fake: FakeStripe) -> AsyncIterator[Receiver]:
    found = Receiver()

    async def endpoint(request: web.Request) -> web.Response:
        found.received.append((await request.read(), request.headers.get("Stripe-Signature", "")))
        return web.Response(status=found.statuses.pop(0) if found.statuses else 200)

    app = web.Application()
    app.router.add_post("/webhook", endpoint)
    async with serving(app) as base:
        found.url = f"{base}/webhook"
        stripe_fake.configure_webhook(found.url, WEBHOOK_SECRET)
        yield found


@pytest.fixture
async def price(stripe_fake: FakeStripe) -> str:
    return (await stripe_fake.create_price("ClawFleet Pro", 900, price_id="price_pro_monthly"))["id"]


async def new_customer(client: stripe.StripeClient, email: str = "ada@example.com") -> str:
    customer = await client.v1.customers.create_async(params={
        "email": email, "payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}})
    return customer["id"]


async def new_session(client: stripe.StripeClient, customer: str, price: str, **extra: object) -> stripe.checkout.Session:
    return await client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer, "client_reference_id": "user-42",
        "line_items": [{"price": price, "quantity": 1}], "success_url": "http://127.0.0.1:9/done?s={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/cancelled", "metadata": {"user_id": "42"},
        "subscription_data": {"metadata": {"user_id": "42"}}, "allow_promotion_codes": True, **extra})


@asynccontextmanager
async def client_for(fake: FakeStripe, *, key: str = TEST_SECRET_KEY, timeout: float = 80,
                     retries: int = 0) -> AsyncIterator[stripe.StripeClient]:
    http_client = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=timeout))
    try:
        yield stripe.StripeClient(key, base_addresses={"api": fake.api_url}, max_network_retries=retries,
                                  http_client=http_client)
    finally:
        await http_client.close_async()


async def test_checkout_session_is_created_and_retrieved(stripe_client, stripe_fake, price):
    customer = await new_customer(stripe_client)
    session = await new_session(stripe_client, customer, price)

    assert session["id"].startswith("cs_test_")
    assert (session["object"], session["mode"], session["status"], session["payment_status"]) == (
        "checkout.session", "subscription", "open", "unpaid")
    assert (session["customer"], session["client_reference_id"], session["subscription"]) == (customer, "user-42", None)
    assert session["metadata"].to_dict() == {"user_id": "42"}
    assert session["url"] == f"{stripe_fake.url}/checkout/{session['id']}"
    assert session["expires_at"] > session["created"] and session["livemode"] is False
    again = await stripe_client.v1.checkout.sessions.retrieve_async(session["id"])
    assert again.to_dict() == session.to_dict()
    items = await stripe_client.v1.checkout.sessions.line_items.list_async(session["id"])
    assert [(item["price"]["id"], item["price"]["unit_amount"], item["quantity"]) for item in items["data"]] == [
        (price, 900, 1)]


async def test_checkout_session_is_refused_as_stripe_refuses_it(stripe_client, price):
    customer = await new_customer(stripe_client)
    cases = [
        ({"customer": customer, "line_items": [{"price": price}]}, "mode"),
        ({"mode": "subscription", "customer": customer}, "line_items"),
        ({"mode": "subscription", "customer": customer, "line_items": [{"price": "price_nope"}]},
         "line_items[0][price]"),
        ({"mode": "subscription", "customer": "cus_nope", "line_items": [{"price": price}]}, "customer"),
        ({"mode": "subscription", "line_items": [{"price": price}]}, "customer"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await stripe_client.v1.checkout.sessions.create_async(params=params)
        assert (refused.value.http_status, refused.value.param) == (400, param), params
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await stripe_client.v1.checkout.sessions.retrieve_async("cs_test_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


async def test_a_repeated_idempotency_key_replays_the_first_answer(stripe_client, stripe_fake):
    params = {"email": "once@example.com"}
    first = await stripe_client.v1.customers.create_async(params=params, options={"idempotency_key": "signup-1"})
    second = await stripe_client.v1.customers.create_async(params=params, options={"idempotency_key": "signup-1"})

    assert second["id"] == first["id"]
    listed = await stripe_client.v1.customers.list_async(params={"email": "once@example.com"})
    assert [c["id"] for c in listed["data"]] == [first["id"]]
    posts = stripe_fake.requests_to("POST", "/v1/customers")
    assert [(r.idempotency_key, r.status, r.replayed) for r in posts] == [("signup-1", 200, False),
                                                                          ("signup-1", 200, True)]
    async with aiohttp.ClientSession() as http, http.post(
            f"{stripe_fake.api_url}/v1/customers", data={"email": "once@example.com"},
            headers={"Authorization": f"Bearer {TEST_SECRET_KEY}", "Idempotency-Key": "signup-1"}) as raw:
        assert raw.headers["Idempotent-Replayed"] == "true" and (await raw.json())["id"] == first["id"]


async def test_an_idempotency_key_reused_with_other_parameters_is_an_error(stripe_client, stripe_fake, price):
    customer = await new_customer(stripe_client)
    options = {"idempotency_key": "checkout-1"}
    first = await stripe_client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer, "line_items": [{"price": price}]}, options=options)
    replayed = await stripe_client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer, "line_items": [{"price": price}]}, options=options)
    assert replayed["id"] == first["id"] and len(stripe_fake.checkout_sessions) == 1

    with pytest.raises(stripe.IdempotencyError) as mismatch:
        await stripe_client.v1.checkout.sessions.create_async(params={
            "mode": "subscription", "customer": customer, "line_items": [{"price": price, "quantity": 2}]},
            options=options)
    assert mismatch.value.http_status == 400 and "same parameters" in mismatch.value.user_message
    with pytest.raises(stripe.IdempotencyError):  # the same key on another path
        await stripe_client.v1.customers.create_async(params={}, options=options)
    async with client_for(stripe_fake, key="sk_test_another_account") as other_account:
        fresh = await other_account.v1.customers.create_async(params={}, options=options)  # keys are per API key
    assert fresh["id"].startswith("cus_")


async def test_paying_on_the_hosted_page_starts_the_subscription_and_tells_the_webhook(
        stripe_client, stripe_fake, receiver, price):
    customer = await new_customer(stripe_client)
    session = await new_session(stripe_client, customer, price)
    async with aiohttp.ClientSession() as http:
        async with http.get(session["url"]) as page:
            html = await page.text()
        assert page.status == 200 and "ClawFleet Pro" in html and "9.00 EUR / month" in html and "Subscribe" in html
        assert 'href="http://127.0.0.1:9/cancelled"' in html
        async with http.post(f"{session['url']}/pay", allow_redirects=False) as paid:
            assert paid.status == 303
            assert paid.headers["Location"] == f"http://127.0.0.1:9/done?s={session['id']}"
        async with http.post(f"{session['url']}/pay", allow_redirects=False) as again:
            assert again.status == 303  # paying twice does nothing more

    done = await stripe_client.v1.checkout.sessions.retrieve_async(session["id"])
    assert (done["status"], done["payment_status"]) == ("complete", "paid")
    subscriptions = await stripe_client.v1.subscriptions.list_async(params={"customer": customer})
    assert [s["id"] for s in subscriptions["data"]] == [done["subscription"]]
    sub = subscriptions["data"][0]
    assert sub["status"] == "active" and sub["plan"]["id"] == price and sub["metadata"].to_dict() == {"user_id": "42"}
    [event] = receiver.events()  # verified with the endpoint's secret, or construct_event raises
    assert (event["type"], event["object"], event["livemode"]) == ("checkout.session.completed", "event", False)
    assert event["id"].startswith("evt_") and event["api_version"] == stripe.api_version
    assert event["data"]["object"]["id"] == session["id"]
    assert event["data"]["object"]["subscription"] == done["subscription"]
    assert [d.status for d in stripe_fake.deliveries] == [200]


async def test_a_browser_subscribes_on_the_checkout_page(stripe_client, stripe_fake, receiver, price, page):
    async def success(request: web.Request) -> web.Response:
        return web.Response(text=f"<p id=ok>{request.query['s']}</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/done", success)
    async with serving(app) as site:
        customer = await new_customer(stripe_client)
        session = await new_session(stripe_client, customer, price, success_url=site + "/done?s={CHECKOUT_SESSION_ID}")
        await page.goto(session["url"])
        await page.get_by_role("button", name="Subscribe").click()
        await page.wait_for_url(f"{site}/done?s={session['id']}")
        assert await page.text_content("#ok") == session["id"]
    assert stripe_fake.checkout_sessions[session["id"]]["status"] == "complete"
    assert [e["type"] for e in receiver.events()] == ["checkout.session.completed"]


async def test_pay_helper_and_expire(stripe_client, stripe_fake, price):
    customer = await new_customer(stripe_client)
    session = await new_session(stripe_client, customer, price)
    paid = await stripe_fake.pay(session["url"])
    assert paid["status"] == "complete" and (await stripe_fake.pay(session["id"]))["subscription"] == paid["subscription"]
    assert len((await stripe_client.v1.subscriptions.list_async(params={"customer": customer}))["data"]) == 1
    with pytest.raises(stripe.InvalidRequestError, match="status of \"complete\""):
        await stripe_client.v1.checkout.sessions.expire_async(session["id"])
    other = await new_session(stripe_client, customer, price)
    expired = await stripe_client.v1.checkout.sessions.expire_async(other["id"])
    assert expired["status"] == "expired"
    with pytest.raises(StripeError, match="no longer active"):  # the fake's own helper raises the fake's error
        await stripe_fake.pay(other["id"])


async def test_a_trial_subscription_is_trialing(stripe_client, stripe_fake, price):
    session = await stripe_client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer_email": "trial@example.com", "line_items": [{"price": price}],
        "subscription_data": {"trial_period_days": 7}})
    paid = await stripe_fake.pay(session["id"])
    sub = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    assert sub["status"] == "trialing" and sub["trial_end"] - sub["trial_start"] == 7 * 86400
    customer = await stripe_client.v1.customers.retrieve_async(paid["customer"])
    assert customer["email"] == "trial@example.com"


async def test_the_portal_cancels_a_subscription(stripe_client, stripe_fake, receiver, price):
    customer = (await stripe_fake.create_customer("portal@example.com"))["id"]
    sub_id = (await stripe_fake.pay((await new_session(stripe_client, customer, price))["id"]))["subscription"]
    portal = await stripe_client.v1.billing_portal.sessions.create_async(params={
        "customer": customer, "return_url": "http://127.0.0.1:9/account"})
    assert portal["id"].startswith("bps_") and portal["object"] == "billing_portal.session"
    assert (portal["customer"], portal["return_url"]) == (customer, "http://127.0.0.1:9/account")
    async with aiohttp.ClientSession() as http:
        async with http.get(portal["url"]) as shown:
            html = await shown.text()
        assert sub_id in html and "Cancel subscription" in html
        async with http.post(f"{portal['url']}/cancel", data={"subscription": sub_id}, allow_redirects=False) as done:
            assert (done.status, done.headers["Location"]) == (303, "http://127.0.0.1:9/account")

    assert (await stripe_client.v1.subscriptions.retrieve_async(sub_id))["status"] == "canceled"
    deleted = receiver.events()[-1]
    assert deleted["type"] == "customer.subscription.deleted" and deleted["data"]["object"]["id"] == sub_id
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await stripe_client.v1.billing_portal.sessions.create_async(params={"customer": "cus_nope"})
    assert refused.value.param == "customer"


async def test_subscriptions_take_prices_where_localstripe_wants_plans(stripe_client, stripe_fake, price):
    yearly = await stripe_client.v1.prices.create_async(params={
        "product_data": {"name": "ClawFleet Pro yearly"}, "unit_amount": 9000, "currency": "eur",
        "recurring": {"interval": "year"}})
    assert (await stripe_client.v1.prices.retrieve_async(yearly["id"]))["unit_amount"] == 9000
    customer = await new_customer(stripe_client)
    sub = await stripe_client.v1.subscriptions.create_async(params={"customer": customer, "items": [{"price": price}]})
    assert sub["status"] == "active" and sub["plan"]["id"] == price
    [item_object] = sub["items"]["data"]
    assert item_object["price"]["id"] == price and item_object["current_period_end"] == sub["current_period_end"]
    item = item_object["id"]
    updated = await stripe_client.v1.subscriptions.update_async(sub["id"], params={
        "items": [{"id": item, "price": yearly["id"]}], "cancel_at_period_end": True})
    assert updated["plan"]["id"] == yearly["id"] and updated["cancel_at_period_end"] is True
    forwarded = stripe_fake.requests_to("POST", f"/v1/subscriptions/{sub['id']}")[0]
    assert forwarded.params["items"][0]["price"] == yearly["id"]  # what the client sent, as it sent it


async def test_fail_next_answers_an_error_and_a_retry_with_the_key_runs_once(stripe_fake):
    stripe_fake.fail_next("/v1/customers", status=500)
    async with client_for(stripe_fake) as no_retries:
        with pytest.raises(stripe.APIError) as failed:
            await no_retries.v1.customers.create_async(params={"email": "x@example.com"})
    assert failed.value.http_status == 500
    stripe_fake.fail_next("/v1/customers", status=503)
    async with client_for(stripe_fake, retries=2) as retrying:
        made = await retrying.v1.customers.create_async(params={"email": "y@example.com"})
        listed = await retrying.v1.customers.list_async()
    posts = stripe_fake.requests_to("POST", "/v1/customers")
    assert [(r.status, r.fault) for r in posts] == [(500, "fail"), (503, "fail"), (200, None)]
    assert posts[1].idempotency_key == posts[2].idempotency_key  # stripe-python's own key, kept across retries
    assert [c["id"] for c in listed["data"]] == [made["id"]]


async def test_delay_next_does_the_work_once_and_the_timed_out_retry_gets_the_replay(stripe_fake):
    stripe_fake.delay_next("/v1/customers", 3.0)
    async with client_for(stripe_fake, timeout=0.5, retries=1) as impatient:
        made = await impatient.v1.customers.create_async(params={"email": "slow@example.com"},
                                                         options={"idempotency_key": "slow-1"})
    async with client_for(stripe_fake) as client:
        listed = await client.v1.customers.list_async()
    assert [c["id"] for c in listed["data"]] == [made["id"]]
    posts = stripe_fake.requests_to("POST", "/v1/customers")
    assert [(r.idempotency_key, r.fault, r.replayed) for r in posts] == [("slow-1", "delay", False),
                                                                         ("slow-1", None, True)]


async def test_events_are_signed_as_stripe_signs_them_and_may_arrive_together(stripe_client, stripe_fake, receiver):
    payload = b'{"id": "evt_1"}'
    assert sign(payload, "whsec_x", 1700000000) == stripe.WebhookSignature.generate_signature_header(
        payload.decode(), "whsec_x", 1700000000)
    customer = await new_customer(stripe_client)
    receiver.statuses = [500]
    statuses = await asyncio.gather(stripe_fake.send("customer.updated", customer, event_id="evt_same"),
                                    stripe_fake.send("customer.updated", customer, event_id="evt_same"))
    assert sorted(statuses) == [200, 500]
    assert await stripe_fake.redeliver("evt_same") == 200
    events = receiver.events()
    assert [e["id"] for e in events] == ["evt_same"] * 3 and events[0]["data"]["object"]["id"] == customer
    assert [d.event_id for d in stripe_fake.deliveries] == ["evt_same"] * 3
    body, header = receiver.received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_wrong")
    assert json.loads(body)["type"] == "customer.updated"


async def test_a_declined_renewal_makes_the_subscription_past_due_until_paid(stripe_client, stripe_fake, receiver,
                                                                             price):
    customer = await new_customer(stripe_client)
    sub_id = (await stripe_fake.pay((await new_session(stripe_client, customer, price))["id"]))["subscription"]
    failed = await stripe_fake.fail_payment(sub_id)
    assert failed["status"] == "open" and failed["subscription"] == sub_id
    assert (await stripe_client.v1.subscriptions.retrieve_async(sub_id))["status"] == "past_due"
    listed = await stripe_client.v1.subscriptions.list_async(params={"customer": customer})
    assert [s["status"] for s in listed["data"]] == ["past_due"]
    assert [e["type"] for e in receiver.events()][-2:] == ["invoice.payment_failed", "customer.subscription.updated"]
    updated = receiver.events()[-1]["data"]
    assert updated["object"]["status"] == "past_due" and updated["previous_attributes"]["status"] == "active"

    paid = await stripe_fake.renew_subscription(sub_id)
    assert paid["id"] == failed["id"] and paid["status"] == "paid"
    assert (await stripe_client.v1.subscriptions.retrieve_async(sub_id))["status"] == "active"
    assert "invoice.paid" in [e["type"] for e in receiver.events()]
    await stripe_fake.cancel_subscription(sub_id)
    assert (await stripe_client.v1.subscriptions.retrieve_async(sub_id))["status"] == "canceled"
    assert receiver.events()[-1]["type"] == "customer.subscription.deleted"


async def test_requests_without_a_secret_key_are_refused(stripe_fake):
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/customers", "/v1/checkout/sessions"):
            async with http.post(stripe_fake.api_url + path, data={}) as refused:
                body = await refused.json()
            assert refused.status == 401 and body["error"]["type"] == "invalid_request_error", path


def test_forms_are_read_as_stripe_reads_them():
    assert parse_form(b"a[b][0][c]=1&a[b][1][c]=2&m[k]=v&e=") == {"a": {"b": [{"c": "1"}, {"c": "2"}]},
                                                                  "m": {"k": "v"}, "e": ""}


async def test_meters_take_events_once_per_identifier_and_sum_them_per_customer(stripe_client):
    meter = await stripe_client.v1.billing.meters.create_async({
        "display_name": "Usage", "event_name": "usage_cents", "default_aggregation": {"formula": "sum"}})
    assert (meter.status, meter.customer_mapping.event_payload_key, meter.value_settings.event_payload_key) == \
        ("active", "stripe_customer_id", "value")
    assert (await stripe_client.v1.billing.meters.retrieve_async(meter.id)).event_name == "usage_cents"
    assert [found.id for found in (await stripe_client.v1.billing.meters.list_async()).data] == [meter.id]
    with pytest.raises(stripe.InvalidRequestError) as taken:
        await stripe_client.v1.billing.meters.create_async({
            "display_name": "Again", "event_name": "usage_cents", "default_aggregation": {"formula": "sum"}})
    assert taken.value.param == "event_name"

    a, b = await new_customer(stripe_client), await new_customer(stripe_client)
    for customer, value, identifier in ((a, "12", "one"), (a, "30", "two"), (b, "5", "three")):
        event = await stripe_client.v1.billing.meter_events.create_async({
            "event_name": "usage_cents", "identifier": identifier,
            "payload": {"stripe_customer_id": customer, "value": value}})
        assert event.identifier == identifier and event.payload["value"] == value
    with pytest.raises(stripe.InvalidRequestError) as repeated:
        await stripe_client.v1.billing.meter_events.create_async({
            "event_name": "usage_cents", "identifier": "one", "payload": {"stripe_customer_id": a, "value": "12"}})
    assert (repeated.value.http_status, repeated.value.param) == (400, "identifier")
    with pytest.raises(stripe.InvalidRequestError) as no_value:
        await stripe_client.v1.billing.meter_events.create_async({
            "event_name": "usage_cents", "payload": {"stripe_customer_id": a}})
    assert no_value.value.param == "payload[value]"

    now = int(time.time())
    window = {"start_time": now - 60, "end_time": now + 60}
    totals = [(await stripe_client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": customer, **window})).data[0].aggregated_value for customer in (a, b)]
    assert totals == [42, 5]
    later = await stripe_client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": a, "start_time": now + 60, "end_time": now + 120})
    assert later.data[0].aggregated_value == 0


async def test_a_metered_price_needs_a_meter_and_checkout_takes_it_without_quantity(stripe_client, stripe_fake, price):
    with pytest.raises(stripe.InvalidRequestError) as no_meter:
        await stripe_client.v1.prices.create_async({"currency": "usd", "unit_amount": 1, "product_data": {"name": "U"},
                                                    "recurring": {"interval": "month", "usage_type": "metered"}})
    assert no_meter.value.param == "recurring[meter]"
    meter = await stripe_fake.create_meter("usage_cents")
    metered = await stripe_client.v1.prices.create_async({
        "currency": "usd", "unit_amount": 1, "product_data": {"name": "Usage"},
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter["id"]}})
    assert (metered.recurring.usage_type, metered.recurring.meter) == ("metered", meter["id"])
    assert (await stripe_client.v1.prices.retrieve_async(metered.id)).recurring.meter == meter["id"]

    customer = await new_customer(stripe_client)
    base = {"mode": "subscription", "customer": customer, "success_url": "https://example.com/ok"}
    with pytest.raises(stripe.InvalidRequestError) as quantity:
        await stripe_client.v1.checkout.sessions.create_async(
            {**base, "line_items": [{"price": price, "quantity": 1}, {"price": metered.id, "quantity": 1}]})
    assert quantity.value.param == "line_items[1][quantity]"
    with pytest.raises(stripe.InvalidRequestError):  # the one licensed item is what localstripe subscribes to
        await stripe_client.v1.checkout.sessions.create_async({**base, "line_items": [{"price": metered.id}]})
    session = await stripe_client.v1.checkout.sessions.create_async(
        {**base, "line_items": [{"price": metered.id}, {"price": price, "quantity": 1}]})
    paid = await stripe_fake.pay(session.id)
    subscription = await stripe_client.v1.subscriptions.retrieve_async(paid["subscription"])
    items = subscription["items"]["data"]
    assert [(item["price"]["id"], item["price"]["recurring"]["usage_type"]) for item in items] == \
        [(price, "licensed"), (metered.id, "metered")]

    updated = await stripe_client.v1.subscriptions.update_async(
        subscription.id, {"items": [{"id": items[1]["id"], "deleted": True}]})
    assert [item["price"]["id"] for item in updated["items"]["data"]] == [price]
    updated = await stripe_client.v1.subscriptions.update_async(subscription.id, {"items": [{"price": metered.id}]})
    assert [item["price"]["id"] for item in updated["items"]["data"]] == [price, metered.id]
