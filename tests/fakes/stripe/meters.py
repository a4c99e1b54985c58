"""Billing Meters and meter events (https://docs.stripe.com/api/billing/meter); localstripe has
neither.

Mimics: `POST /v1/billing/meters` (`display_name`, `event_name`, `default_aggregation[formula]`
sum/count/last, `customer_mapping[event_payload_key]`, `value_settings[event_payload_key]`;
an event name an active meter has already is refused), `GET /v1/billing/meters` (`status`,
`limit`), `GET /v1/billing/meters/{id}`; `POST /v1/billing/meter_events` (`event_name`,
`payload` with the meter's customer and value keys, `identifier`, `timestamp` within the past
35 days or up to 5 minutes ahead): Stripe enforces an identifier's uniqueness for at least 24
hours, so a repeated identifier is refused (400, `param=identifier`) and not counted;
`GET /v1/billing/meters/{id}/event_summaries` (`customer`, `start_time`, `end_time`: one
summary of the whole window; events from `start_time` up to, not including, `end_time`).
Known gaps: events are aggregated at once (Stripe takes a few minutes); no
`value_grouping_window`, no deactivating or updating meters, no meter event adjustments, no
`v1.billing.meter.error_report_triggered` events for events that name no meter (they are kept
and count for nothing).
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

from tests.fakes.stripe.protocol import JsonDict, StripeError, list_page, missing_param, new_id, no_such

FORMULAS = ("count", "last", "sum")
PAST_S, AHEAD_S = 35 * 86400, 300


class Meters:
    def __init__(self) -> None:
        self.meters: dict[str, JsonDict] = {}
        self.events: list[JsonDict] = []  # accepted meter events, in arrival order
        self._identifiers: set[str] = set()

    def create(self, params: JsonDict) -> JsonDict:
        for name in ("display_name", "event_name"):
            if not params.get(name):
                raise missing_param(name)
        formula = (params.get("default_aggregation") or {}).get("formula")
        if not formula:
            raise missing_param("default_aggregation[formula]")
        if formula not in FORMULAS:
            raise StripeError(400, f"Invalid default_aggregation[formula]: must be one of {', '.join(FORMULAS)}",
                              param="default_aggregation[formula]")
        if any(meter["event_name"] == params["event_name"] and meter["status"] == "active"
               for meter in self.meters.values()):
            raise StripeError(400, f"An active meter with event_name '{params['event_name']}' already exists.",
                              param="event_name")
        now = int(time.time())
        meter = {
            "id": new_id("mtr_test_"), "object": "billing.meter", "created": now, "updated": now,
            "display_name": params["display_name"], "event_name": params["event_name"],
            "event_time_window": params.get("event_time_window"), "livemode": False, "status": "active",
            "status_transitions": {"deactivated_at": None},
            "default_aggregation": {"formula": formula},
            "customer_mapping": {"event_payload_key": (params.get("customer_mapping") or {}).get(
                "event_payload_key", "stripe_customer_id"), "type": "by_id"},
            "value_settings": {"event_payload_key": (params.get("value_settings") or {}).get(
                "event_payload_key", "value")},
        }
        self.meters[meter["id"]] = meter
        return meter

    def get(self, meter_id: str) -> JsonDict:
        if meter_id not in self.meters:
            raise no_such("billing.meter", meter_id, status=404)
        return self.meters[meter_id]

    def list(self, params: JsonDict) -> JsonDict:
        found = [meter for meter in reversed(self.meters.values())
                 if params.get("status") in (None, meter["status"])]
        return list_page(found, params, "/v1/billing/meters")

    def create_event(self, params: JsonDict) -> JsonDict:
        for name in ("event_name", "payload"):
            if not params.get(name):
                raise missing_param(name)
        payload = params["payload"]
        if not isinstance(payload, dict):
            raise StripeError(400, "Invalid object", param="payload")
        now = int(time.time())
        timestamp = int(params.get("timestamp") or now)
        if not now - PAST_S <= timestamp <= now + AHEAD_S:
            raise StripeError(400, "Timestamp must be within the past 35 calendar days or up to 5 minutes in the "
                              "future.", param="timestamp")
        meter = next((meter for meter in self.meters.values()
                      if meter["event_name"] == params["event_name"] and meter["status"] == "active"), None)
        if meter is not None:
            for key in (meter["customer_mapping"]["event_payload_key"], meter["value_settings"]["event_payload_key"]):
                if not payload.get(key):
                    raise missing_param(f"payload[{key}]")
            try:
                Decimal(payload[meter["value_settings"]["event_payload_key"]])
            except InvalidOperation:
                raise StripeError(400, "The meter event value must be a number.",
                                  param=f"payload[{meter['value_settings']['event_payload_key']}]") from None
        identifier = params.get("identifier") or new_id("", 32)
        if identifier in self._identifiers:
            raise StripeError(400, f"An event with identifier '{identifier}' already exists.", param="identifier")
        self._identifiers.add(identifier)
        event = {"object": "billing.meter_event", "created": now, "event_name": params["event_name"],
                 "identifier": identifier, "livemode": False, "payload": dict(payload), "timestamp": timestamp}
        self.events.append(event)
        return event

    def summaries(self, meter_id: str, params: JsonDict) -> JsonDict:
        meter = self.get(meter_id)
        for name in ("customer", "start_time", "end_time"):
            if params.get(name) in (None, ""):
                raise missing_param(name)
        start, end = int(params["start_time"]), int(params["end_time"])
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        values = [Decimal(event["payload"][value_key]) for event in self.events
                  if event["event_name"] == meter["event_name"] and event["payload"].get(customer_key) ==
                  params["customer"] and start <= event["timestamp"] < end]
        formula = meter["default_aggregation"]["formula"]
        total = sum(values, Decimal(0)) if formula == "sum" else len(values) if formula == "count" else \
            (values[-1] if values else Decimal(0))
        summary = {"id": new_id("mtrusg_test_"), "object": "billing.meter_event_summary",
                   "aggregated_value": float(total), "start_time": start, "end_time": end, "livemode": False,
                   "meter": meter_id}
        return {"object": "list", "data": [summary], "has_more": False,
                "url": f"/v1/billing/meters/{meter_id}/event_summaries"}
