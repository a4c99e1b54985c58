"""Stripe's webhook deliveries in /metrics, by type and outcome: refused signatures (their type
unread: unverified), an event billing does not act on (other), its second delivery, and one
that could not be acted on."""

from __future__ import annotations

import json

from tests.fakes.stripe.events import sign
from tests.support.api_client import Api
from tests.support.billing import WEBHOOK_SECRET
from tests.support.metrics_scrape import scrape, value


async def _post(api: Api, event: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
    async with api.http.post(api.url("/api/webhooks/stripe"), data=event, headers=headers) as response:
        return response.status


def _event(event_id: str, kind: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "type": kind, "object": "event", "data": {"object": obj}}).encode()


async def test_deliveries_by_type_and_outcome(api: Api) -> None:
    other = _event("evt_metrics_1", "customer.created", {"id": "cus_x", "object": "customer"})
    assert await _post(api, other, None) == 400
    assert await _post(api, other, sign(other, "whsec_not_ours")) == 400
    assert await _post(api, other, sign(other, WEBHOOK_SECRET)) == 200
    assert await _post(api, other, sign(other, WEBHOOK_SECRET)) == 200
    unknown = _event("evt_metrics_2", "customer.subscription.updated", {"id": "sub_nobody", "object": "subscription"})
    assert await _post(api, unknown, sign(unknown, WEBHOOK_SECRET)) == 503  # Stripe knows no such subscription
    families = await scrape(api)
    assert value(families, "clawfleet_stripe_events_total", type="unverified", outcome="refused") == 2
    assert value(families, "clawfleet_stripe_events_total", type="other", outcome="ignored") == 1
    assert value(families, "clawfleet_stripe_events_total", type="other", outcome="duplicate") == 1
    assert value(families, "clawfleet_stripe_events_total", type="customer.subscription.updated",
                 outcome="failed") == 1
    types = {sample.labels["type"] for sample in families["clawfleet_stripe_events"].samples}
    assert "customer.created" not in types
