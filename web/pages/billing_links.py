"""What the pages need of billing besides /billing itself: going to Stripe from a form (its
Content-Security-Policy must allow the redirect), the payment-failed banner, and words for
Stripe's subscription statuses."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from billing.service import Billing
from db.models import User
from web.keys import SERVICES
from web.security_headers import CONTENT_SECURITY_POLICY

# Where Stripe's hosted pages live: a form that posts here is answered 303 to one of them, and
# browsers hold a redirect after a form to the page's form-action.
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")

STATUS_TEXT = {
    "active": "Active",
    "trialing": "Free trial",
    "past_due": "Payment failed: Stripe is trying again",
    "unpaid": "Unpaid: your assistants are stopped until it is paid",
    "canceled": "Ended",
    "incomplete": "Waiting for the first payment",
    "incomplete_expired": "The first payment did not go through",
    "paused": "Paused",
}


def billing_of_pages(request: web.Request) -> Billing | None:
    return request.app[SERVICES].billing


def stripe_form_policy(billing: Billing) -> str:
    """The app's policy, with forms allowed to lead on to Stripe's pages (and to the Stripe the
    platform is pointed at, a fake one in tests)."""
    origins = list(STRIPE_PAGES)
    api_url = billing.stripe_api_url
    if api_url:
        parts = urlsplit(api_url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", "form-action 'self' " + " ".join(origins))


def allowing_stripe_forms(response: web.StreamResponse, billing: Billing | None) -> web.StreamResponse:
    if billing is not None:
        response.headers["Content-Security-Policy"] = stripe_form_policy(billing)
    return response


async def payment_failed(request: web.Request, user: User) -> bool:
    """Whether the banner shows: billing is on and the subscription's last payment failed."""
    billing = billing_of_pages(request)
    return billing is not None and (await billing.view(user)).payment_failed


def status_text(status: str | None) -> str:
    if status is None:
        return "No subscription"
    return STATUS_TEXT.get(status, status.replace("_", " ").capitalize())


def date_text(moment: datetime | None) -> str | None:
    return f"{moment:%B} {moment.day}, {moment.year}" if moment is not None else None
