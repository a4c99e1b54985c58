"""The pages an instance's own host shows its owner while the gateway is not running (stopped,
starting, failed) and its errors. They stand alone: links and styles point at the dashboard's
origin, since everything relative on this host belongs to the gateway."""

from __future__ import annotations

import hmac
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from db.errors import AccessDenied
from db.models import Instance
from db.status import Status
from web.csrf import EXPIRED, FOREIGN, csrf_token
from web.forms import CSRF_FIELD, form_pairs
from web.instance_site.visitors import Visitor, cookie_name
from web.keys import CONFIG, SERVICES
from web.pages.render import static_url
from web.pages.status_words import status_words

REFRESH_S = 3  # a starting instance's page reloads itself until its gateway answers (no script needed)
STARTABLE = {Status.STOPPED, Status.ERROR, Status.HIBERNATED}
HEADINGS = {
    Status.AWAITING_PAYMENT: "Your assistant is waiting for its first payment",
    Status.PROVISIONING: "Your assistant is starting",
    Status.RUNNING: "Your assistant is starting",  # its gateway cannot be reached from here yet
    Status.STOPPED: "Your assistant is stopped",
    Status.HIBERNATED: "Your assistant is asleep",
    Status.ERROR: "Your assistant could not start",
    Status.SUSPENDED: "Your assistant is suspended",
    Status.DELETING: "Your assistant is being deleted",
}


async def state(request: web.Request, instance: Instance, visitor: Visitor) -> web.Response:
    """What the instance is doing, for its owner, with a Start button when it can start."""
    services = request.app[SERVICES]
    events = []
    if instance.status == Status.PROVISIONING:
        user = await services.accounts.user_by_id(visitor.user_id)
        if user is not None:
            events, _ = await services.instances.progress_so_far(user, instance.id)
    context = {
        "instance": instance,
        "words": status_words(instance.status),
        "heading": HEADINGS[instance.status],
        "events": events,
        "startable": instance.status in STARTABLE,
        "refresh_s": REFRESH_S if instance.status in (Status.PROVISIONING, Status.RUNNING) else None,
        "csrf_token": _form_token(request),
        "instance_page": f"{_dashboard(request)}/instances/{instance.id}",
    }
    return _page(request, "instance_site/state.html", context, status=503 if instance.status != Status.RUNNING else 200)


def error(request: web.Request, status: int, message: str) -> web.Response:
    return _page(request, "instance_site/error.html", {"status": status, "message": message}, status=status)


async def check_form(request: web.Request) -> None:
    """A form of this host's own page: sent from this origin, with this visit's token."""
    origin = request.headers.get("Origin", "")
    ours = f"{request.app[SERVICES].instances.urls.scheme}://{request.host}"
    if origin.lower() != ours.lower():
        raise AccessDenied(FOREIGN)
    sent = dict(await form_pairs(request)).get(CSRF_FIELD, "")
    if not hmac.compare_digest(sent.encode(), _form_token(request).encode()):
        raise AccessDenied(EXPIRED)


def _form_token(request: web.Request) -> str:
    cookie = request.cookies.get(cookie_name(request.app[CONFIG].secure), "")
    return csrf_token(cookie) if cookie else ""


def _dashboard(request: web.Request) -> str:
    return request.app[CONFIG].public_url.rstrip("/")


def _page(request: web.Request, template: str, context: dict[str, Any], *, status: int) -> web.Response:
    dashboard = _dashboard(request)
    response = aiohttp_jinja2.render_template(template, request, {
        **context, "dashboard": dashboard, "static": lambda name: dashboard + static_url(name)}, status=status)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {dashboard}; img-src {dashboard}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response
