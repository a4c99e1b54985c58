"""What every part of the fake Stripe shares: ids, form bodies as Stripe reads them, and
Stripe's error JSON."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

JsonDict = dict[str, Any]

LOOPBACK = "127.0.0.1"
API_VERSION = "2026-10-28.endive"  # stripe-python 16.1.0's pinned version, which events claim
_ID_CHARS = string.ascii_letters + string.digits
METER_KEY = "fake_stripe_meter"  # a metered price's meter, kept in its localstripe plan's metadata


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's: a type prefix and random letters and digits."""
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(length))


class StripeError(Exception):
    """An answer in Stripe's error shape; raised by handlers, turned into a response once."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> web.Response:
        error: JsonDict = {"type": self.type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
        return web.json_response({"error": error}, status=self.status)


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str | None = None, status: int = 400) -> StripeError:
    """Stripe's answer for an id that names nothing: 404 on its own path, 400 as a parameter."""
    return StripeError(status, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


def list_page(found: list[JsonDict], params: JsonDict, url: str) -> JsonDict:
    """A list answer: the first `limit` (default 10) of what was found, newest first."""
    limit = int(params.get("limit", 10))
    return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": url}


def parse_form(body: bytes | str) -> JsonDict:
    """A form body (`a[b][0][c]=v`, as stripe-python encodes it) as nested dicts and lists."""
    text = body.decode() if isinstance(body, bytes) else body
    tree: JsonDict = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        keys = re.findall(r"[^\[\]]+|\[\]", name)
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return _lists(tree)


def _lists(node: Any) -> Any:
    """Dicts whose keys are all indexes become lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def api_key_of(request: web.Request) -> str | None:
    """The secret key of `Authorization: Bearer sk_...` (what stripe-python sends)."""
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return key if key.startswith(("sk_", "rk_")) and len(key) > 5 else None


def price_of(plan: JsonDict) -> JsonDict:
    """A localstripe plan in the shape of a Stripe Price."""
    metadata = dict(plan.get("metadata") or {})
    meter = metadata.pop(METER_KEY, None)
    return {"id": plan["id"], "object": "price", "active": plan.get("active", True),
            "billing_scheme": plan.get("billing_scheme", "per_unit"), "created": plan.get("created"),
            "currency": plan.get("currency"), "livemode": False, "lookup_key": metadata.get("lookup_key"),
            "metadata": metadata, "nickname": plan.get("nickname"), "product": plan.get("product"),
            "recurring": {"interval": plan.get("interval"), "interval_count": plan.get("interval_count", 1),
                          "usage_type": plan.get("usage_type", "licensed"), "meter": meter,
                          "trial_period_days": None},
            "tax_behavior": "unspecified", "type": "recurring", "unit_amount": plan.get("amount"),
            "unit_amount_decimal": str(plan.get("amount"))}
