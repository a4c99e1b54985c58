"""Prices over localstripe's plans (localstripe has no `/v1/prices`): a plan's id is the price's.

Mimics: `GET /v1/prices/{id}`, `GET /v1/prices` (`product`, `active`, `limit`) and
`POST /v1/prices` with `product` (or `product_data[name]`), `unit_amount`, `currency`,
`recurring[interval]`, `recurring[interval_count]`, `recurring[usage_type]` (`metered` with
`recurring[meter]`, a meter of the fake's: required, as since API version 2025-03-31),
`nickname`, `metadata`, `lookup_key` (kept as metadata only), answered as `price` objects.
Known gaps: recurring prices only; no tiers, no `lookup_keys` search, no update.
"""

from __future__ import annotations

from tests.fakes.stripe.meters import Meters
from tests.fakes.stripe.protocol import METER_KEY, JsonDict, StripeError, missing_param, new_id, no_such, price_of
from tests.fakes.stripe.upstream import Upstream


class Prices:
    def __init__(self, upstream: Upstream, meters: Meters) -> None:
        self.upstream = upstream
        self.meters = meters

    async def get(self, price_id: str) -> JsonDict:
        try:
            return price_of(await self.upstream.call("GET", f"/v1/plans/{price_id}"))
        except StripeError as error:
            if error.status == 404:
                raise no_such("price", price_id, status=404) from None
            raise

    async def list(self, params: JsonDict) -> JsonDict:
        query = {key: params[key] for key in ("product", "active", "limit", "starting_after") if key in params}
        plans = await self.upstream.call("GET", "/v1/plans", query)
        return {"object": "list", "data": [price_of(plan) for plan in plans["data"]],
                "has_more": plans.get("has_more", False), "url": "/v1/prices"}

    async def create(self, params: JsonDict) -> JsonDict:
        for name in ("currency", "unit_amount"):
            if params.get(name) in (None, ""):
                raise missing_param(name)
        recurring = params.get("recurring") or {}
        if not recurring.get("interval"):
            raise StripeError(400, "This fake makes recurring prices only: recurring[interval] is required.",
                              param="recurring[interval]")
        usage_type = recurring.get("usage_type", "licensed")
        if usage_type not in ("licensed", "metered"):
            raise StripeError(400, "Invalid recurring[usage_type]: must be one of licensed, metered",
                              param="recurring[usage_type]")
        meter = recurring.get("meter")
        if usage_type == "metered" and not meter:
            raise StripeError(400, "A meter is required for prices with recurring[usage_type]=metered.",
                              param="recurring[meter]")
        if meter and usage_type != "metered":
            raise StripeError(400, "recurring[meter] can only be set with recurring[usage_type]=metered.",
                              param="recurring[meter]")
        if meter and meter not in self.meters.meters:
            raise no_such("billing.meter", meter, "recurring[meter]")
        product = params.get("product")
        if not product:
            name = (params.get("product_data") or {}).get("name")
            if not name:
                raise missing_param("product")
            product = (await self.upstream.call("POST", "/v1/products", {"name": name}))["id"]
        metadata = dict(params.get("metadata") or {})
        if params.get("lookup_key"):
            metadata["lookup_key"] = params["lookup_key"]
        if meter:
            metadata[METER_KEY] = meter
        plan = await self.upstream.call("POST", "/v1/plans", {
            "id": params.get("id") or new_id("price_"), "product": product, "amount": params["unit_amount"],
            "currency": params["currency"], "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1), "nickname": params.get("nickname"),
            "usage_type": usage_type, "metadata": metadata})
        return price_of(plan)
