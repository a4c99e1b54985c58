"""The Stripe calls billing makes, and only those: each with a timeout and an idempotency key
derived from what it does, so a retry after a timeout (ours or the library's own) makes one
object, not two. A Stripe failure becomes db.errors.Unavailable with a message for a person;
what Stripe said goes to the operator's log, never to the person.

The API version is the one the pinned `stripe` library is built for (stripe.api_version): its
objects are read in that layout (billing.subscriptions also reads the older one a fake may send).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe
import structlog
from pydantic import SecretStr

from db.errors import Unavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

UNREACHABLE = "Payments are not answering right now; nothing was charged. Please try again in a minute."
MISCONFIGURED = "Payments are not set up correctly on this server; the operator has been told. Nothing was charged."


@dataclass(frozen=True)
class StripeConfig:
    secret_key: SecretStr
    api_url: str | None = None  # None: Stripe's own
    timeout_s: float = 10.0
    retries: int = 2  # the library retries connection errors and 409/5xx, with the same idempotency key


def idempotency_key(*parts: object) -> str:
    """The same request (same purpose, same inputs) gets the same key, so Stripe answers a
    repeat with the first object instead of making another."""
    return "clawfleet-" + hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:40]


class StripeApi:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self.http_client = stripe.AIOHTTPClient(timeout=config.timeout_s)
        self.client = stripe.StripeClient(
            config.secret_key.get_secret_value(),
            base_addresses={"api": config.api_url} if config.api_url else None,
            http_client=self.http_client,
            max_network_retries=config.retries,
        )

    async def close(self) -> None:
        await self.http_client.close_async()

    @property
    def v1(self):
        return self.client.v1

    async def call(self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one Stripe request; `what` names it in the log (never its parameters)."""
        try:
            return await request()
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            log.warning("stripe did not answer", request=what, error=type(exc).__name__,
                        status=getattr(exc, "http_status", None))
            raise Unavailable(UNREACHABLE) from None
        except stripe.StripeError as exc:  # refused: our request or our account is wrong
            log.error("stripe refused a request", request=what, error=type(exc).__name__,
                      status=getattr(exc, "http_status", None), code=getattr(exc, "code", None),
                      stripe_message=getattr(exc, "user_message", None) or str(exc)[:300])
            raise Unavailable(MISCONFIGURED) from None

    # -- the calls ----------------------------------------------------------------------------
    async def create_customer(self, *, user_id: str, email: str | None, name: str | None) -> str:
        params: dict[str, Any] = {"metadata": {"clawfleet_user_id": user_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        customer = await self.call("customers.create", lambda: self.v1.customers.create_async(
            params, {"idempotency_key": idempotency_key("customer", user_id)}))
        return customer.id

    async def create_checkout(self, *, customer: str, user_id: str, price: str, plan_id: str, trial_days: int,
                              success_url: str, cancel_url: str, attempt: str, overage_price: str | None = None) -> Any:
        """`overage_price`: a metered price, a second line item (no quantity: usage decides)."""
        subscription_data: dict[str, Any] = {"metadata": {"clawfleet_user_id": user_id, "plan": plan_id}}
        if trial_days:
            subscription_data["trial_period_days"] = trial_days
        params = {
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": user_id,
            "line_items": [{"price": price, "quantity": 1}] + ([{"price": overage_price}] if overage_price else []),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"clawfleet_user_id": user_id, "plan": plan_id},
            "subscription_data": subscription_data,
        }
        return await self.call("checkout.sessions.create", lambda: self.v1.checkout.sessions.create_async(
            params, {"idempotency_key": idempotency_key("checkout", user_id, plan_id, success_url, attempt)}))

    async def checkout_session(self, session_id: str) -> Any:
        return await self.call("checkout.sessions.retrieve",
                               lambda: self.v1.checkout.sessions.retrieve_async(session_id))

    async def create_portal(self, *, customer: str, return_url: str) -> Any:
        return await self.call("billing_portal.sessions.create", lambda: self.v1.billing_portal.sessions.create_async(
            {"customer": customer, "return_url": return_url}))  # nothing lasting is made: no key needed

    async def subscription(self, subscription_id: str) -> Any:
        return await self.call("subscriptions.retrieve",
                               lambda: self.v1.subscriptions.retrieve_async(subscription_id))

    async def subscriptions_of(self, customer: str) -> list[Any]:
        page = await self.call("subscriptions.list", lambda: self.v1.subscriptions.list_async(
            {"customer": customer, "status": "all", "limit": 100}))
        return list(page.data)

    # `since`: when the subscription was last changed as we know it, so the same change asked
    # again from the same state is one request, and a later change back is a new one.
    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool, *, since: str) -> Any:
        return await self.call("subscriptions.update", lambda: self.v1.subscriptions.update_async(
            subscription_id, {"cancel_at_period_end": cancel},
            {"idempotency_key": idempotency_key("cancel-at-period-end", subscription_id, cancel, since)}))

    async def change_price(self, subscription_id: str, item_id: str, price: str, *, since: str,
                           metered: list[dict[str, Any]] | None = None) -> Any:
        """Swap the plan's item to `price`; `metered`: the changes of metered items that go with it
        (`{"price": p}` adds one, `{"id": i, "price": p}` swaps, `{"id": i, "deleted": True}` removes)."""
        items = [{"id": item_id, "price": price}, *(metered or [])]
        return await self.call("subscriptions.update", lambda: self.v1.subscriptions.update_async(
            subscription_id, {"items": items, "proration_behavior": "create_prorations"},
            {"idempotency_key": idempotency_key("change-price", subscription_id, item_id, price, since,
                                                *(sorted(change.items()) for change in metered or []))}))

    async def send_meter_event(self, event_name: str, *, customer: str, value: int, identifier: str) -> bool:
        """Report `value` units of usage for `customer` on the meter of `event_name`; False when
        Stripe has an event of this identifier already (it was sent before: counted once)."""
        async def send() -> bool:
            try:
                await self.v1.billing.meter_events.create_async(
                    {"event_name": event_name, "identifier": identifier,
                     "payload": {"stripe_customer_id": customer, "value": str(value)}},
                    {"idempotency_key": idempotency_key("meter-event", identifier)})
            except stripe.InvalidRequestError as exc:
                if getattr(exc, "param", None) != "identifier":
                    raise
                log.info("stripe has this meter event already", identifier=identifier)
                return False
            return True
        return await self.call("billing.meter_events.create", send)

    async def cancel_now(self, subscription_id: str) -> Any:
        return await self.call("subscriptions.cancel", lambda: self.v1.subscriptions.cancel_async(
            subscription_id, options={"idempotency_key": idempotency_key("cancel", subscription_id)}))
