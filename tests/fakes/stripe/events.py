"""Stripe events and their signed webhook delivery (https://docs.stripe.com/webhooks).

Mimics: an `event` object (`id` evt_..., `object`, `api_version`, `created`, `data.object`,
`data.previous_attributes` for *.updated, `livemode`, `pending_webhooks`, `request`, `type`)
POSTed as JSON with `Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>`, the
header `stripe.Webhook.construct_event` verifies. A redelivery sends the same event (same id
and body) with a fresh signature, as Stripe's retries do. Deliveries run at once, each on its
own, so two of one event may arrive together (events arrive at least once and in any order).
Known gaps: no automatic retries on failure (a test calls `redeliver`), one endpoint, no
`events` filter on it, no thin events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import aiohttp

from tests.fakes.stripe.protocol import API_VERSION, JsonDict, new_id


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends with `payload`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def build_event(event_type: str, data_object: JsonDict, *, event_id: str | None = None,
                created: int | None = None, previous_attributes: JsonDict | None = None) -> JsonDict:
    data: JsonDict = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {"id": event_id or new_id("evt_"), "object": "event", "api_version": API_VERSION,
            "created": int(time.time()) if created is None else created, "data": data, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type}


@dataclass
class Delivery:
    """One POST of an event to the webhook endpoint."""

    event_id: str
    event_type: str
    status: int | None  # the endpoint's HTTP status; None when it could not be reached
    error: str | None = None


class Webhooks:
    """The one endpoint events go to, the events sent and every delivery attempt."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.secret: str | None = None
        self.events: dict[str, JsonDict] = {}  # by id, in the order they were first sent
        self.deliveries: list[Delivery] = []
        self._http: aiohttp.ClientSession | None = None

    def configure(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    async def send(self, event: JsonDict) -> int | None:
        """POSTs `event` signed; the endpoint's status (None if unreachable)."""
        if self.url is None or self.secret is None:
            raise RuntimeError("no webhook endpoint: call configure_webhook(url, secret) first")
        self.events.setdefault(event["id"], event)
        payload = json.dumps(event, indent=2).encode()  # Stripe's bodies are indented JSON too
        headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(payload, self.secret),
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._http.post(self.url, data=payload, headers=headers) as response:
                await response.read()
                delivery = Delivery(event["id"], event["type"], response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery = Delivery(event["id"], event["type"], None, f"{type(exc).__name__}: {exc}")
        self.deliveries.append(delivery)
        return delivery.status

    async def redeliver(self, event_id: str) -> int | None:
        return await self.send(self.events[event_id])

    def deliveries_of(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.event_type == event_type]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
