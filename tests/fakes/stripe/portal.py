"""Customer Portal sessions (https://docs.stripe.com/api/customer_portal/sessions) and the page
behind them; localstripe has neither.

Mimics: `POST /v1/billing_portal/sessions` with `customer` (required, must exist),
`return_url`, `flow_data[type]` (`subscription_cancel` needs
`flow_data[subscription_cancel][subscription]`), `configuration`, `locale`; a
`billing_portal.session` whose `url` is the fake's page. The page lists the customer's
subscriptions with a "Cancel subscription" button; cancelling ends the subscription in
localstripe at once (or sets `cancel_at_period_end` when `FakeStripe.portal_cancels_at_period_end`),
delivers `customer.subscription.deleted` (or `.updated`) and redirects to `return_url`.
Known gaps: no plan switching, payment method or invoice history pages; sessions never expire;
the portal configuration is not checked (any `bpc_` id is accepted).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from tests.fakes.stripe import pages
from tests.fakes.stripe.lifecycle import Lifecycle
from tests.fakes.stripe.protocol import JsonDict, StripeError, missing_param, new_id, no_such
from tests.fakes.stripe.upstream import Upstream

FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update", "subscription_update_confirm")


class Portal(pages.HostedSessions):
    page_path = "portal"

    def __init__(self, upstream: Upstream, base_url: Callable[[], str], lifecycle: Lifecycle) -> None:
        super().__init__(upstream, base_url)
        self.lifecycle = lifecycle
        self.cancels_at_period_end = False

    async def create(self, params: JsonDict) -> JsonDict:
        customer = params.get("customer")
        if not customer:
            raise missing_param("customer")
        if not await self.upstream.exists(f"/v1/customers/{customer}"):
            raise no_such("customer", customer, "customer")
        flow = params.get("flow_data")
        if flow is not None:
            kind = flow.get("type") if isinstance(flow, dict) else None
            if kind not in FLOW_TYPES:
                raise StripeError(400, f"Invalid flow_data[type]: must be one of {', '.join(FLOW_TYPES)}",
                                  param="flow_data[type]")
            if kind == "subscription_cancel" and not (flow.get("subscription_cancel") or {}).get("subscription"):
                raise missing_param("flow_data[subscription_cancel][subscription]")
        session_id = new_id("bps_")
        session = {"id": session_id, "object": "billing_portal.session",
                   "configuration": params.get("configuration") or "bpc_fake_default", "created": int(time.time()),
                   "customer": customer, "flow": flow, "livemode": False, "locale": params.get("locale"),
                   "on_behalf_of": None, "return_url": params.get("return_url"),
                   "url": self.page_url(session_id)}
        self.sessions[session_id] = session
        return session

    async def page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return pages.page("Portal session not found", "<p>This link is no longer valid.</p>", status=404)
        found = await self.upstream.call("GET", "/v1/subscriptions", {"customer": session["customer"]})
        rows = []
        for sub in found["data"]:
            plan = sub.get("plan") or {}
            state = "cancels at period end" if sub.get("cancel_at_period_end") else sub["status"]
            cancel = "" if sub.get("cancel_at_period_end") else pages.button_form(
                f"/portal/{session['id']}/cancel", "Cancel subscription", "cancel-subscription",
                {"subscription": sub["id"]})
            rows.append(f"<li data-testid=\"subscription\" data-id=\"{pages.escape(sub['id'])}\">"
                        f"{pages.escape(pages.plan_name(plan, None))} — {pages.escape(pages.price_text(plan))} — "
                        f"<span data-testid=\"status\">{pages.escape(state)}</span>{cancel}</li>")
        listing = f"<ul>{''.join(rows)}</ul>" if rows else "<p data-testid=\"no-subscriptions\">No subscriptions.</p>"
        back = session.get("return_url")
        return pages.page("Your subscriptions", listing + (pages.link(back, "Return", "return") if back else ""))

    async def cancel_from_page(self, request: web.Request) -> web.StreamResponse:
        session = self.sessions.get(request.match_info["id"])
        form = await request.post()
        sub_id = str(form.get("subscription", ""))
        if session is None:
            return pages.page("Portal session not found", "", status=404)
        try:
            await self.cancel(session["customer"], sub_id)
        except StripeError as error:
            return pages.page("Could not cancel", f"<p>{pages.escape(error.message)}</p>", status=error.status)
        if session.get("return_url"):
            raise web.HTTPSeeOther(session["return_url"])
        return pages.page("Subscription cancelled", "")

    async def cancel(self, customer: str, sub_id: str) -> JsonDict:
        sub = await self.lifecycle.subscription(sub_id)
        if sub.get("customer") != customer:
            raise no_such("subscription", sub_id, status=404)
        if self.cancels_at_period_end:
            return await self.lifecycle.cancel_at_period_end(sub_id)
        return await self.lifecycle.cancel(sub_id)
