"""Stripe's webhook deliveries: verified on the raw body before anything reads it.

The `Stripe-Signature` header is `t=<unix time>,v1=<hex>[,v1=<hex>…]`: each v1 is an
HMAC-SHA256 of "<t>.<body>" under the endpoint's secret; during a secret rotation Stripe sends one
per secret, and any that matches will do. A timestamp more than TOLERANCE_S away (in either
direction: a delivery from the future is a replay someone prepared) is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import stripe

from db.errors import InvalidInput

TOLERANCE_S = 300
MAX_HEADER = 4096  # a real one is about 150 characters per signature
HEADER = "Stripe-Signature"


class SignatureRefused(InvalidInput):
    """Not a delivery from Stripe (or not a fresh one): answered 400, nothing is read or changed."""


def verified_event(payload: bytes, header: str | None, secrets: Sequence[str], *,
                   now: float | None = None) -> dict[str, Any]:
    """The event the body holds, once its signature is Stripe's under one of `secrets`."""
    if not header:
        raise SignatureRefused("The Stripe-Signature header is missing.", field=HEADER)
    if len(header) > MAX_HEADER:
        raise SignatureRefused("The Stripe-Signature header is too long.", field=HEADER)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRefused("The body is not UTF-8 text.", field="body") from None
    timestamp = _timestamp(header)
    now = time.time() if now is None else now
    if timestamp is None or abs(now - timestamp) > TOLERANCE_S:
        raise SignatureRefused("The signature's timestamp is missing or too far from now.", field=HEADER)
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=TOLERANCE_S)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise SignatureRefused("The signature does not match this endpoint's secret.", field=HEADER)
    try:
        event = json.loads(text)
    except ValueError:
        raise SignatureRefused("The body is not JSON.", field="body") from None
    if not (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
            and isinstance((event.get("data") or {}).get("object"), dict)):
        raise SignatureRefused("The body is not a Stripe event.", field="body")
    return event


def _timestamp(header: str) -> int | None:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None
    return None
