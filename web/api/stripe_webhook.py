"""POST /api/webhooks/stripe: Stripe's event deliveries (the endpoint's URL is PUBLIC_URL + PATH).

The raw body and its `Stripe-Signature` header go to billing as they came: the signature is
checked on those very bytes before anything reads them. No session and no CSRF token: Stripe
proves itself with the signature, and a request without cookies is nobody's forgery. Stripe
delivers again whatever is not answered 2xx, so a failure to act answers 5xx (nothing was kept)."""

from __future__ import annotations

import structlog
from aiohttp import web

from billing.webhooks import HEADER, SignatureRefused
from db.errors import Unavailable
from web.api.bodies import read_limited
from web.api.billing import billing_of
from web.api.operations import operation
from web.api.schemas import WebhookReceived
from web.errors import error_response

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

PATH = "/api/webhooks/stripe"
MAX_EVENT_BYTES = 1 << 20  # Stripe's events are a few kilobytes
FAILED = "The event could not be acted on; nothing was kept. Stripe delivers it again."


@routes.post(PATH)
@operation("One of Stripe's events (a webhook delivery)", tag="billing", responses={200: WebhookReceived},
           errors=(400, 404, 413, 500, 503), security="stripe",
           description="The body is Stripe's event, signed in Stripe-Signature with the endpoint's secret: a missing, "
                       "wrong or stale signature is 400 and changes nothing. 503 when Stripe itself did not answer a "
                       "read, 500 when acting failed: nothing was kept either way, and Stripe delivers it again. "
                       "404 (billing_off) with billing off.")
async def stripe_event(request: web.Request) -> web.Response:
    billing = billing_of(request)
    payload = await read_limited(request, MAX_EVENT_BYTES)
    signature = request.headers.get(HEADER)
    try:
        outcome = await billing.handle_webhook(payload, signature)
    except SignatureRefused as exc:
        log.info("stripe webhook refused", reason=exc.message)
        return error_response(400, exc.code, exc.message, exc.field)
    except Unavailable as exc:
        log.warning("stripe webhook not acted on: stripe did not answer")
        return error_response(503, exc.code, exc.message)
    except Exception:
        log.exception("stripe webhook not acted on")
        return error_response(500, "internal_error", FAILED)
    return web.json_response(WebhookReceived(received=True, outcome=outcome).model_dump(mode="json"))
