"""Checkout Sessions (https://docs.stripe.com/api/checkout/sessions) and the hosted page that
pays them; localstripe has neither.

Mimics: `POST /v1/checkout/sessions` in `mode=subscription` with `customer` or
`customer_email`, `line_items[N][price]` (+ `quantity`), `success_url`, `cancel_url`,
`client_reference_id`, `metadata`, `subscription_data[metadata]`,
`subscription_data[trial_period_days]`, `allow_promotion_codes` and other accepted fields;
`GET /v1/checkout/sessions/{id}`, `GET .../{id}/line_items`, `POST .../{id}/expire`, and
`GET /v1/checkout/sessions` (`customer`, `subscription`, `status` filters). Errors as Stripe
words them (missing mode, unknown price or customer, expiring a session that is not open).
Paying (the page's form, or `FakeStripe.pay`) makes the subscription in localstripe on the
customer's card (`pm_card_visa` when the customer has none; a customer made from
`customer_email` otherwise), marks the session `complete`/`paid`, delivers
`checkout.session.completed` and redirects to `success_url` with `{CHECKOUT_SESSION_ID}`
filled in. Paying again changes nothing.
Metered prices (`recurring[usage_type]=metered`) may be line items beside the one licensed item,
with no quantity (Stripe refuses one); they become the subscription's metered items, which the
front keeps (`upstream`).
Known gaps: only `mode=subscription` and one licensed line item (localstripe's subscriptions hold
one plan); no payment or setup mode, no promotion codes, taxes, embedded UI or custom fields;
a trial is an overlay (status `trialing`, `trial_end`) on a paid localstripe subscription,
since localstripe's trials never become active; sessions never expire by time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes.stripe import pages
from tests.fakes.stripe.protocol import JsonDict, StripeError, list_page, missing_param, new_id, no_such, price_of
from tests.fakes.stripe.upstream import Upstream

Notify = Callable[..., Awaitable[Any]]
SESSION_LIFETIME_S = 24 * 3600
MODES = ("payment", "setup", "subscription")


class Checkout(pages.HostedSessions):
    page_path = "checkout"

    def __init__(self, upstream: Upstream, base_url: Callable[[], str], notify: Notify) -> None:
        super().__init__(upstream, base_url)
        self.notify = notify
        self._orders: dict[str, JsonDict] = {}  # what a session sells: line items, subscription_data
        self._locks: dict[str, asyncio.Lock] = {}

    # -- API ---------------------------------------------------------------------------------------
    async def create(self, params: JsonDict) -> JsonDict:
        mode = params.get("mode")
        if not mode:
            raise missing_param("mode")
        if mode not in MODES:
            raise StripeError(400, f"Invalid mode: must be one of {', '.join(MODES)}", param="mode")
        if mode != "subscription":
            raise StripeError(400, f"This fake supports mode=subscription only, not {mode}.", param="mode")
        customer, email = params.get("customer"), params.get("customer_email")
        if customer and email:
            raise StripeError(400, "You may only specify one of these parameters: customer, customer_email.",
                              param="customer_email")
        if not customer and not email:
            raise StripeError(400, "In `subscription` mode, `customer` or `customer_email` is required.",
                              param="customer")
        if customer and not await self.upstream.exists(f"/v1/customers/{customer}"):
            raise no_such("customer", customer, "customer")
        line_items = await self._line_items(params.get("line_items"))
        now = int(time.time())
        session_id = new_id("cs_test_", 58)
        plan = line_items[0]["plan"]  # the licensed one
        amount = int(plan.get("amount") or 0) * line_items[0]["quantity"]
        session = {
            "id": session_id, "object": "checkout.session", "after_expiration": None,
            "allow_promotion_codes": _flag(params.get("allow_promotion_codes")), "amount_subtotal": amount,
            "amount_total": amount, "billing_address_collection": params.get("billing_address_collection"),
            "cancel_url": params.get("cancel_url"), "client_reference_id": params.get("client_reference_id"),
            "created": now, "currency": plan.get("currency"), "customer": customer,
            "customer_creation": None if customer else "always", "customer_details": None,
            "customer_email": email, "expires_at": now + SESSION_LIFETIME_S, "invoice": None,
            "livemode": False, "locale": params.get("locale"), "metadata": params.get("metadata") or {},
            "mode": mode, "payment_intent": None, "payment_method_types": ["card"], "payment_status": "unpaid",
            "status": "open", "subscription": None, "success_url": params.get("success_url"),
            "ui_mode": "hosted", "url": self.page_url(session_id),
        }
        self.sessions[session_id] = session
        self._orders[session_id] = {"line_items": line_items, "subscription_data": params.get("subscription_data") or {}}
        return session

    def get(self, session_id: str) -> JsonDict:
        if session_id not in self.sessions:
            raise no_such("checkout.session", session_id, status=404)
        return self.sessions[session_id]

    def list(self, params: JsonDict) -> JsonDict:
        wanted = {key: params[key] for key in ("customer", "subscription", "status", "payment_intent") if key in params}
        found = [s for s in reversed(self.sessions.values()) if all(s.get(k) == v for k, v in wanted.items())]
        return list_page(found, params, "/v1/checkout/sessions")

    def line_items(self, session_id: str) -> JsonDict:
        self.get(session_id)
        data = [{"id": f"li_{session_id[8:32]}{n}", "object": "item", "amount_subtotal": item["amount"],
                 "amount_total": item["amount"], "currency": item["plan"].get("currency"),
                 "description": item["plan"].get("nickname"), "price": price_of(item["plan"]),
                 "quantity": item["quantity"]} for n, item in enumerate(self._orders[session_id]["line_items"])]
        return {"object": "list", "data": data, "has_more": False,
                "url": f"/v1/checkout/sessions/{session_id}/line_items"}

    async def expire(self, session_id: str) -> JsonDict:
        session = self.get(session_id)
        if session["status"] != "open":
            raise StripeError(400, "Only Checkout Sessions with a status in [\"open\"] can be expired. This "
                              f"Checkout Session has a status of \"{session['status']}\".")
        session.update(status="expired", url=None)
        await self.notify("checkout.session.expired", session)
        return session

    async def pay(self, session_id: str) -> JsonDict:
        """Completes an open session as the customer's payment would (once: a paid one stays so)."""
        session = self.get(session_id)
        async with self._locks.setdefault(session_id, asyncio.Lock()):
            if session["status"] == "complete":
                return session
            if session["status"] != "open":
                raise StripeError(400, "This Checkout Session is no longer active.")
            order = self._orders[session_id]
            customer = session["customer"] or (await self.upstream.call(
                "POST", "/v1/customers", {"email": session["customer_email"]}))["id"]
            await self._ensure_card(customer)
            item, *metered = order["line_items"]
            subscription = await self.upstream.call("POST", "/v1/subscriptions", {
                "customer": customer, "items": [{"plan": item["plan"]["id"], "quantity": item["quantity"]}],
                "metadata": order["subscription_data"].get("metadata") or {}})
            if metered:
                self.upstream.metered_items[subscription["id"]] = [
                    self.upstream.metered_item(subscription["id"], extra["plan"]) for extra in metered]
                subscription = await self.upstream.call("GET", f"/v1/subscriptions/{subscription['id']}")
            trial_days = order["subscription_data"].get("trial_period_days")
            if trial_days:
                now = int(time.time())
                self.upstream.subscription_overlays[subscription["id"]] = {
                    "status": "trialing", "trial_start": now, "trial_end": now + int(trial_days) * 86400}
            session.update(status="complete", payment_status="no_payment_required" if trial_days else "paid",
                           customer=customer, subscription=subscription["id"], invoice=subscription.get("latest_invoice"),
                           customer_details={"email": session["customer_email"]}, url=None)
        await self.notify("checkout.session.completed", session)
        return session

    async def _ensure_card(self, customer: str) -> None:
        """A customer without a card gets the test Visa, as if typed into the page."""
        found = await self.upstream.call("GET", f"/v1/customers/{customer}")
        if not (found.get("invoice_settings") or {}).get("default_payment_method") and not found.get("default_source"):
            await self.upstream.call("POST", f"/v1/customers/{customer}",
                                     {"invoice_settings": {"default_payment_method": "pm_card_visa"}})

    async def _line_items(self, given: Any) -> list[JsonDict]:
        if not given:
            raise StripeError(400, "You must provide at least one recurring price in `subscription` mode when "
                              "using prices.", param="line_items")
        if not isinstance(given, list):
            raise StripeError(400, "Invalid array", param="line_items")
        items = []
        for n, item in enumerate(given):
            price = item.get("price") if isinstance(item, dict) else None
            if not price:
                raise missing_param(f"line_items[{n}][price]")
            try:
                plan = await self.upstream.call("GET", f"/v1/plans/{price}")
            except StripeError as error:
                if error.status == 404:
                    raise no_such("price", price, f"line_items[{n}][price]") from None
                raise
            if plan.get("usage_type") == "metered":
                if item.get("quantity") not in (None, ""):
                    raise StripeError(400, "Quantity should not be specified where usage_type is `metered`. Remove "
                                      f"quantity from `line_items[{n}]`.", param=f"line_items[{n}][quantity]")
                items.append({"plan": plan, "quantity": None, "amount": 0})
                continue
            quantity = int(item.get("quantity") or 1)
            items.append({"plan": plan, "quantity": quantity, "amount": int(plan.get("amount") or 0) * quantity})
        licensed = [item for item in items if item["quantity"] is not None]
        if len(licensed) != 1:
            raise StripeError(400, "This fake supports one licensed line item (localstripe subscriptions hold one "
                              "plan), beside any metered ones.", param="line_items")
        return licensed + [item for item in items if item["quantity"] is None]

    # -- the hosted page ----------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return pages.page("Checkout Session not found", "<p>Something went wrong.</p>", status=404)
        if session["status"] != "open":
            done = session.get("success_url") if session["status"] == "complete" else None
            back = pages.link(fill(done, session["id"]), "Continue", "continue") if done else ""
            return pages.page("This Checkout Session is no longer active", f"<p>{back}</p>")
        item = self._orders[session["id"]]["line_items"][0]
        product = await self._product(item["plan"])
        cancel = session.get("cancel_url")
        body = (f"<p data-testid=\"plan\">{pages.escape(pages.plan_name(item['plan'], product))}</p>"
                f"<p data-testid=\"amount\">{pages.escape(pages.price_text(item['plan'], item['quantity']))}</p>"
                + (f"<p>{pages.escape(session['customer_email'])}</p>" if session.get("customer_email") else "")
                + pages.button_form(f"/checkout/{session['id']}/pay", "Subscribe", "subscribe")
                + (pages.link(cancel, "Cancel", "cancel") if cancel else ""))
        return pages.page("Subscribe", body)

    async def pay_from_page(self, request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["id"]
        try:
            session = await self.pay(session_id)
        except StripeError as error:
            return pages.page("Payment failed", f"<p>{pages.escape(error.message)}</p>", status=error.status)
        if session.get("success_url"):
            raise web.HTTPSeeOther(fill(session["success_url"], session_id))
        return pages.page("Thanks for your order", "<p data-testid=\"paid\">Payment complete.</p>")

    async def _product(self, plan: JsonDict) -> JsonDict | None:
        product = plan.get("product")
        if isinstance(product, dict) or not product:
            return product or None
        try:
            return await self.upstream.call("GET", f"/v1/products/{product}")
        except StripeError:
            return None


def fill(url: str, session_id: str) -> str:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id)


def _flag(value: Any) -> bool | None:
    return None if value is None else str(value).lower() == "true"
