"""FakeStripe: the "Stripe front" on 127.0.0.1 that code under test calls as api.stripe.com.

It answers Checkout, Customer Portal, Prices and Billing Meters itself, forwards every other `/v1/...` request
to localstripe, holds every POST to Stripe's idempotency rules, logs each request, meets the
faults a test armed, and delivers signed webhook events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.stripe.api_guard import ApiGuard, Handler
from tests.fakes.stripe.checkout import Checkout
from tests.fakes.stripe.events import Delivery, Webhooks, build_event
from tests.fakes.stripe.faults import Faults, StripeRequest
from tests.fakes.stripe.lifecycle import Lifecycle
from tests.fakes.stripe.meters import Meters
from tests.fakes.stripe.portal import Portal
from tests.fakes.stripe.prices import Prices
from tests.fakes.stripe.protocol import JsonDict, parse_form
from tests.fakes.stripe.serving import LoopbackServer
from tests.fakes.stripe.upstream import Upstream

# Where an event's object is read from, by the event type's prefix
EVENT_SOURCES = (("customer.subscription.", "/v1/subscriptions/"), ("invoice.", "/v1/invoices/"),
                 ("customer.", "/v1/customers/"), ("payment_intent.", "/v1/payment_intents/"))


class FakeStripe(LoopbackServer):
    """`async with FakeStripe(localstripe_url) as stripe_fake:`; give `stripe_fake.api_url` to
    `stripe.StripeClient(key, base_addresses={"api": ...})` or `CLAWFLEET_STRIPE_API_URL`."""

    def __init__(self, localstripe_url: str, *, api_key: str = "sk_test_clawfleet_fake") -> None:
        super().__init__()
        self.upstream = Upstream(localstripe_url, api_key)
        self.webhooks = Webhooks()
        self.faults = Faults()
        self.guard = ApiGuard(self.faults)
        self.lifecycle = Lifecycle(self.upstream, self._notify)
        self.checkout = Checkout(self.upstream, lambda: self.url, self._notify)
        self.portal = Portal(self.upstream, lambda: self.url, self.lifecycle)
        self.meters = Meters()
        self.prices = Prices(self.upstream, self.meters)

    @property
    def requests(self) -> list[StripeRequest]:
        """Every `/v1/` request, in arrival order, with what it was answered."""
        return self.guard.requests

    @property
    def api_url(self) -> str:
        """The API base, without /v1 (what stripe-python's `base_addresses["api"]` takes)."""
        return self.url

    # -- life --------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard.middleware])
        routes = app.router
        routes.add_post("/v1/checkout/sessions", self._json(lambda r, p: self.checkout.create(p)))
        routes.add_get("/v1/checkout/sessions", self._json(lambda r, p: self.checkout.list(p)))
        routes.add_get("/v1/checkout/sessions/{id}", self._json(self._get_session))
        routes.add_get("/v1/checkout/sessions/{id}/line_items",
                       self._json(lambda r, p: self.checkout.line_items(r.match_info["id"])))
        routes.add_post("/v1/checkout/sessions/{id}/expire",
                        self._json(lambda r, p: self.checkout.expire(r.match_info["id"])))
        routes.add_post("/v1/billing_portal/sessions", self._json(lambda r, p: self.portal.create(p)))
        routes.add_get("/v1/prices", self._json(lambda r, p: self.prices.list(p)))
        routes.add_post("/v1/prices", self._json(lambda r, p: self.prices.create(p)))
        routes.add_get("/v1/prices/{id}", self._json(lambda r, p: self.prices.get(r.match_info["id"])))
        routes.add_post("/v1/billing/meters", self._json(lambda r, p: self.meters.create(p)))
        routes.add_get("/v1/billing/meters", self._json(lambda r, p: self.meters.list(p)))
        routes.add_get("/v1/billing/meters/{id}", self._json(lambda r, p: self.meters.get(r.match_info["id"])))
        routes.add_get("/v1/billing/meters/{id}/event_summaries",
                       self._json(lambda r, p: self.meters.summaries(r.match_info["id"], p)))
        routes.add_post("/v1/billing/meter_events", self._json(lambda r, p: self.meters.create_event(p)))
        routes.add_route("*", "/v1/{tail:.*}", self._forward)
        routes.add_get("/checkout/{id}", self.checkout.page)
        routes.add_post("/checkout/{id}/pay", self.checkout.pay_from_page)
        routes.add_get("/portal/{id}", self.portal.page)
        routes.add_post("/portal/{id}/cancel", self.portal.cancel_from_page)
        return app

    async def close(self) -> None:
        await self.webhooks.close()
        await self.upstream.close()
        await super().close()

    # -- what tests arm and read ----------------------------------------------------------------------
    def fail_next(self, path_prefix: str, status: int = 500) -> None:
        """The next request whose path starts with `path_prefix` answers `status` in Stripe's
        error shape, having done nothing (and saved nothing under its Idempotency-Key)."""
        self.faults.fail_next(path_prefix, status)

    def delay_next(self, path_prefix: str, seconds: float) -> None:
        """The next matching request does its work at once but answers after `seconds`: a
        client that gave up and retries with the same Idempotency-Key gets the replay."""
        self.faults.delay_next(path_prefix, seconds)

    def requests_to(self, method: str, path: str) -> list[StripeRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def checkout_sessions(self) -> dict[str, JsonDict]:
        return self.checkout.sessions

    @property
    def portal_sessions(self) -> dict[str, JsonDict]:
        return self.portal.sessions

    @property
    def portal_cancels_at_period_end(self) -> bool:
        return self.portal.cancels_at_period_end

    @portal_cancels_at_period_end.setter
    def portal_cancels_at_period_end(self, value: bool) -> None:
        self.portal.cancels_at_period_end = value

    # -- events ------------------------------------------------------------------------------------
    def configure_webhook(self, url: str, secret: str) -> None:
        """Where events go (one endpoint) and the secret they are signed with."""
        self.webhooks.configure(url, secret)

    @property
    def deliveries(self) -> list[Delivery]:
        return self.webhooks.deliveries

    @property
    def events(self) -> list[JsonDict]:
        return list(self.webhooks.events.values())

    async def deliver(self, event_type: str, data_object: JsonDict, *, event_id: str | None = None,
                      created: int | None = None, previous_attributes: JsonDict | None = None) -> int | None:
        """Builds an event around `data_object`, delivers it signed; the endpoint's status."""
        event = build_event(event_type, data_object, event_id=event_id, created=created,
                            previous_attributes=previous_attributes)
        return await self.webhooks.send(event)

    async def redeliver(self, event_id: str) -> int | None:
        """The same event again (same id and body), as Stripe retries it."""
        return await self.webhooks.redeliver(event_id)

    async def send(self, event_type: str, object_id: str, *, event_id: str | None = None,
                   previous_attributes: JsonDict | None = None) -> int | None:
        """Delivers `event_type` about the object as it is now (checkout sessions from the fake,
        subscriptions, invoices, customers and payment intents freshly from localstripe)."""
        return await self.deliver(event_type, await self.current(event_type, object_id), event_id=event_id,
                                  previous_attributes=previous_attributes)

    async def current(self, event_type: str, object_id: str) -> JsonDict:
        if event_type.startswith("checkout.session."):
            return self.checkout.get(object_id)
        path = next((path for prefix, path in EVENT_SOURCES if event_type.startswith(prefix)), None)
        if path is None:
            raise ValueError(f"no known source for {event_type} objects: use deliver(type, object)")
        return await self.upstream.call("GET", path + object_id)

    async def _notify(self, event_type: str, data_object: JsonDict, *,
                      previous_attributes: JsonDict | None = None) -> int | None:
        """An event the fake sends on its own (after a payment, a portal cancel): skipped when no
        endpoint is configured, so tests that do not care need not set one."""
        if self.webhooks.url is None:
            return None
        return await self.deliver(event_type, data_object, previous_attributes=previous_attributes)

    # -- what a customer or Stripe's clock would do ---------------------------------------------------
    async def pay(self, session: str) -> JsonDict:
        """Pays a Checkout Session (its id or url) as the hosted page's Subscribe button does."""
        return await self.checkout.pay(session.rstrip("/").rsplit("/", 1)[-1])

    async def cancel_subscription(self, sub_id: str) -> JsonDict:
        return await self.lifecycle.cancel(sub_id)

    async def set_subscription_status(self, sub_id: str, status: str, **fields: Any) -> JsonDict:
        return await self.lifecycle.set_status(sub_id, status, **fields)

    async def fail_payment(self, sub_id: str) -> JsonDict:
        return await self.lifecycle.fail_payment(sub_id)

    async def renew_subscription(self, sub_id: str) -> JsonDict:
        return await self.lifecycle.renew(sub_id)

    async def create_customer(self, email: str | None = None, **params: Any) -> JsonDict:
        """A customer with the working test Visa as default card."""
        params = {"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"},
                  **({"email": email} if email else {}), **params}
        return await self.upstream.call("POST", "/v1/customers", params)

    async def create_price(self, name: str, unit_amount: int, *, currency: str = "eur", interval: str = "month",
                           price_id: str | None = None, **params: Any) -> JsonDict:
        """A product and a recurring price for it (a localstripe plan under the price's id)."""
        return await self.prices.create({"product_data": {"name": name}, "unit_amount": unit_amount,
                                         "currency": currency, "recurring": {"interval": interval},
                                         "id": price_id, **params})

    async def create_meter(self, event_name: str, *, display_name: str = "Model usage", **params: Any) -> JsonDict:
        """A meter summing the `value` of events named `event_name`, per `stripe_customer_id`."""
        return self.meters.create({"display_name": display_name, "event_name": event_name,
                                   "default_aggregation": {"formula": "sum"}, **params})

    async def create_metered_price(self, name: str, unit_amount: int, meter: str, *, currency: str = "usd",
                                   price_id: str | None = None) -> JsonDict:
        """A monthly price billed on what `meter` sums in each period, `unit_amount` per unit."""
        return await self.create_price(name, unit_amount, currency=currency, price_id=price_id,
                                       recurring={"interval": "month", "usage_type": "metered", "meter": meter})

    # -- serving ------------------------------------------------------------------------------------
    def _json(self, answer: Callable[[web.Request, JsonDict], Any]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            params = parse_form(await request.read() if request.method == "POST" else request.query_string)
            result = answer(request, params)
            if asyncio.iscoroutine(result):
                result = await result
            return web.json_response(result)
        return handler

    async def _get_session(self, request: web.Request, params: JsonDict) -> JsonDict:
        session = dict(self.checkout.get(request.match_info["id"]))
        for field in params.get("expand") or []:
            if field == "line_items":
                session["line_items"] = self.checkout.line_items(session["id"])
            elif field in ("subscription", "customer", "invoice") and isinstance(session.get(field), str):
                session[field] = await self.upstream.call("GET", f"/v1/{field}s/{session[field]}")
        return session

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        answer = await self.upstream.forward(request.method, request.path_qs, request.path, await request.read(),
                                             request.headers)
        return web.Response(body=answer.body, status=answer.status, headers={"Content-Type": answer.content_type})
