"""The fake's line to localstripe: requests forwarded as they came, modern parameters
translated where localstripe has an older equivalent, and the few subscription fields
localstripe cannot hold laid over its answers.

Translations, on subscription create and update: `items[N][price]` becomes `items[N][plan]`
(localstripe has no Prices; a plan id serves as the price id), and `proration_behavior`
(2019 on) becomes the older `prorate` (`none` is false, the others true). Answers gain what today's API
reads where localstripe's 2017 layout lacks it: each subscription item gets `price` (its plan
as a price) and the subscription's `current_period_start`/`current_period_end` (since API
version 2025-03-31 they live on the items). Overlays: a status (and fields such as
`trial_end`) the fake set on a subscription that localstripe still calls `active`, because
localstripe cannot make a subscription `past_due` or `trialing` through its API. Metered items
(a price with `recurring[usage_type]=metered`, billed on a meter): localstripe holds one item per
subscription, so the front keeps a subscription's metered items itself, adds them to every
answer's `items`, and takes them out of `items[N]` on a subscription update (added with `price`
and no quantity, swapped with `id` and `price`, removed with `id` and `deleted`), forwarding the
rest.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp

from tests.fakes.stripe.protocol import JsonDict, StripeError, new_id, price_of

FORWARDED_HEADERS = ("Authorization", "Stripe-Version", "Idempotency-Key", "Content-Type", "Stripe-Account")
_SUBSCRIPTION_WRITE = re.compile(r"/v1/(subscriptions(/sub_\w+)?|customers/cus_\w+/subscriptions(/sub_\w+)?)")
_PRICE_PARAM = re.compile(r"^(items\[\d+\])\[price\]$")
_ITEM_PARAM = re.compile(r"^items\[(\d+)\]\[(\w+)\]$")
_SUBSCRIPTION_UPDATE = re.compile(r"/v1/subscriptions/(sub_\w+)")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


def translate_form(method: str, path: str, body: bytes) -> bytes:
    """The body localstripe understands for what a current client sent."""
    if method != "POST" or not _SUBSCRIPTION_WRITE.fullmatch(path) or \
            (b"price" not in body and b"proration_behavior" not in body):
        return body
    pairs = []
    for name, value in parse_qsl(body.decode(), keep_blank_values=True):
        if name == "proration_behavior":
            pairs.append(("prorate", "false" if value == "none" else "true"))
        else:
            pairs.append((_PRICE_PARAM.sub(r"\1[plan]", name), value))
    return urlencode(pairs).encode()


class Upstream:
    """localstripe at `url`, with the overlays the fake keeps on subscriptions."""

    def __init__(self, url: str, api_key: str = "sk_test_clawfleet_fake") -> None:
        self.url = url
        self.api_key = api_key  # for the fake's own calls (checkout, portal, helpers)
        self.subscription_overlays: dict[str, JsonDict] = {}
        self.metered_items: dict[str, list[JsonDict]] = {}  # subscription id: its metered items
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def forward(self, method: str, path_qs: str, path: str, body: bytes, headers: Any) -> Answer:
        """The request as localstripe answers it (after translation and overlays)."""
        sent = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        body, metered = await self._take_metered(method, path, body)
        if metered is not None and not body:  # only metered items change: nothing for localstripe to do
            method, path_qs = "GET", path
        async with self.http.request(method, self.url + path_qs, data=translate_form(method, path, body) or None,
                                     headers=sent) as response:
            answer = Answer(response.status, await response.read(), response.content_type)
        if method == "DELETE" and path.startswith("/v1/subscriptions/"):
            self.subscription_overlays.pop(path.rsplit("/", 1)[1], None)
        if metered is not None and answer.status == 200:
            metered()
        return self._overlaid(answer)

    def metered_item(self, subscription_id: str, plan: JsonDict) -> JsonDict:
        """A metered subscription item of the plan (a localstripe plan with usage_type metered)."""
        return {"id": new_id("si_"), "object": "subscription_item", "created": int(time.time()), "metadata": {},
                "plan": plan, "price": price_of(plan), "subscription": subscription_id, "tax_rates": []}

    async def is_metered(self, plan_id: str) -> JsonDict | None:
        """The plan, when it is a metered one."""
        plan = await self.call("GET", f"/v1/plans/{plan_id}")
        return plan if plan.get("usage_type") == "metered" else None

    async def _take_metered(self, method: str, path: str, body: bytes):
        """The update's body without its metered items, and what applies them once it succeeded."""
        match = _SUBSCRIPTION_UPDATE.fullmatch(path)
        if method != "POST" or match is None or b"items" not in body:
            return body, None
        subscription_id = match.group(1)
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        items: dict[int, dict[str, str]] = {}
        rest = []
        for name, value in pairs:
            found = _ITEM_PARAM.match(name)
            if found:
                items.setdefault(int(found.group(1)), {})[found.group(2)] = value
            else:
                rest.append((name, value))
        held = {item["id"]: item for item in self.metered_items.get(subscription_id, [])}
        kept, changes = [], []
        for n in sorted(items):
            fields = items[n]
            plan = None
            if fields.get("price") and fields.get("deleted") != "true":
                plan = await self.is_metered(fields["price"])
            if fields.get("id") in held or (not fields.get("id") and plan is not None):
                if plan is not None and fields.get("quantity"):
                    raise StripeError(400, "Quantity should not be specified where usage_type is `metered`. "
                                      f"Remove quantity from `items[{n}]`.", param=f"items[{n}][quantity]")
                if fields.get("id") in held and fields.get("price") and plan is None:
                    raise StripeError(400, "This fake cannot turn a metered item into a licensed one.",
                                      param=f"items[{n}][price]")
                changes.append((fields, plan))
            else:
                kept.append(fields)
        if not changes:
            return body, None
        for n, fields in enumerate(kept):
            rest.extend((f"items[{n}][{key}]", value) for key, value in fields.items())

        def apply() -> None:
            now = self.metered_items.setdefault(subscription_id, [])
            for fields, plan in changes:
                item = next((item for item in now if item["id"] == fields.get("id")), None)
                if item is None:
                    now.append(self.metered_item(subscription_id, plan))
                elif fields.get("deleted") == "true":
                    now.remove(item)
                else:
                    item.update(plan=plan, price=price_of(plan))
        return urlencode(rest).encode(), apply

    async def call(self, method: str, path: str, params: JsonDict | list[tuple[str, str]] | None = None) -> JsonDict:
        """The fake's own call; a localstripe error becomes the same StripeError."""
        pairs = params if isinstance(params, list) else flatten(params or {})
        body = urlencode(pairs).encode() if method == "POST" else b""
        path_qs = path if method == "POST" or not pairs else f"{path}?{urlencode(pairs)}"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = await self.forward(method, path_qs, path, body, headers)
        data = answer.json()
        if answer.status >= 400:
            error = data.get("error", {})
            raise StripeError(answer.status, error.get("message", "localstripe refused"),
                              type=error.get("type", "invalid_request_error"), code=error.get("code"))
        return data

    async def exists(self, path: str) -> bool:
        try:
            await self.call("GET", path)
            return True
        except StripeError as error:
            if error.status == 404:
                return False
            raise

    def _overlaid(self, answer: Answer) -> Answer:
        if not answer.content_type.endswith("json") or b'"subscription' not in answer.body:
            return answer
        data = answer.json()
        _overlay(data, self.subscription_overlays, self.metered_items)
        return Answer(answer.status, json.dumps(data, indent=2).encode(), answer.content_type)


def _overlay(node: Any, overlays: dict[str, JsonDict], metered: dict[str, list[JsonDict]]) -> None:
    """Modernises and overlays every subscription object inside `node`, in place."""
    if isinstance(node, list):
        for item in node:
            _overlay(item, overlays, metered)
    elif isinstance(node, dict):
        if node.get("object") == "subscription":
            items = node.get("items")
            if isinstance(items, dict) and metered.get(node.get("id", "")):
                items["data"] = list(items.get("data") or []) + [dict(item) for item in metered[node["id"]]]
                items["total_count"] = len(items["data"])
            _modernise(node)
            overlay = overlays.get(node.get("id", ""))
            if overlay and node.get("status") not in ("canceled", "incomplete_expired"):
                node.update(overlay)
        for value in node.values():
            _overlay(value, overlays, metered)


def _modernise(subscription: JsonDict) -> None:
    items = subscription.get("items")
    for item in items.get("data", []) if isinstance(items, dict) else []:
        if isinstance(item.get("plan"), dict):
            item.setdefault("price", price_of(item["plan"]))
        for name in ("current_period_start", "current_period_end"):
            item.setdefault(name, subscription.get(name))


def flatten(params: JsonDict | list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested params as Stripe's form pairs (`items[0][plan]=...`)."""
    pairs: list[tuple[str, str]] = []
    items: Any = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)):
            pairs.extend(flatten(value, name))
        elif value is not None:
            pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs
