"""Requests by host: one whose Host names an instance (provisioner/instance_urls.py) is served
here, as that instance's own site, and never reaches the dashboard's routes or middlewares
(its cookie, CSRF and security headers are the dashboard's; the Control UI has its own);
every other host is the dashboard.

On an instance's host: `/_clawfleet/...` is the platform's (sign-in, the start button), the
rest is the owner's gateway, through the reverse proxy while the instance runs, or a small page
saying what it is doing (stopped, starting, failed) while it does not."""

from __future__ import annotations

import structlog
from aiohttp import web

from db import errors
from db.models import Instance
from db.status import Status
from web.errors import STATUS_OF, Handler, http_error_message
from web.instance_site import pages
from web.instance_site.sign_in import SIGN_IN_PATH, dashboard_door, redeem, safe_next
from web.instance_site.visitors import LIFETIME, Visitor, cookie_name, opened_visitor, sealed_visitor
from web.instance_site.gateway import to_gateway
from web.keys import CONFIG, INSTANCE_HOST, SERVICES

log = structlog.get_logger(__name__)

START_PATH = "/_clawfleet/start"


@web.middleware
async def instance_hosts(request: web.Request, handler: Handler) -> web.StreamResponse:
    subdomain = request.app[SERVICES].instances.urls.subdomain_of(request.host)
    if subdomain is None:
        return await handler(request)
    request[INSTANCE_HOST] = subdomain
    try:
        return await _serve(request, subdomain)
    except errors.ServiceError as exc:
        return pages.error(request, STATUS_OF.get(type(exc), 400), exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return pages.error(request, exc.status, http_error_message(exc))


async def _serve(request: web.Request, subdomain: str) -> web.StreamResponse:
    services = request.app[SERVICES]
    instance = await services.instances.at_subdomain(subdomain)
    if request.path == SIGN_IN_PATH:
        return await _sign_in(request, instance)
    visitor = await _owner(request, instance)
    if visitor is None:
        raise web.HTTPSeeOther(dashboard_door(request, subdomain))  # known host or not: the same
    if request.path == START_PATH:
        return await _start(request, instance, visitor)
    if instance.status == Status.RUNNING and instance.endpoint_url and services.proxy is not None:
        return await to_gateway(request, services.proxy, instance)
    return await pages.state(request, instance, visitor)


async def _owner(request: web.Request, instance: Instance | None) -> Visitor | None:
    """The instance's owner, from this host's cookie and a dashboard session still alive."""
    if instance is None:
        return None
    ring = request.app[SERVICES].instances.keyring
    visitor = opened_visitor(ring, request.cookies.get(cookie_name(request.app[CONFIG].secure), ""), instance.id)
    if visitor is None or visitor.user_id != instance.user_id:
        return None
    if await request.app[SERVICES].accounts.session_owner(visitor.session_id) != visitor.user_id:
        return None
    return visitor


async def _sign_in(request: web.Request, instance: Instance | None) -> web.StreamResponse:
    if instance is None:
        raise errors.NotFound("There is nothing at this address.")
    user, session_id = await redeem(request, instance)
    config = request.app[CONFIG]
    response = web.HTTPSeeOther(safe_next(request.query.get("next", "/")))
    value = sealed_visitor(request.app[SERVICES].instances.keyring, instance.id, Visitor(user.id, session_id))
    response.set_cookie(cookie_name(config.secure), value, max_age=int(LIFETIME.total_seconds()), path="/",
                        httponly=True, samesite="Lax", secure=config.secure)
    raise response


async def _start(request: web.Request, instance: Instance, visitor: Visitor) -> web.StreamResponse:
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    await pages.check_form(request)
    user = await request.app[SERVICES].accounts.user_by_id(visitor.user_id)
    if user is None:
        raise errors.NotFound("There is nothing at this address.")
    await request.app[SERVICES].instances.start(user, instance.id)
    raise web.HTTPSeeOther("/")
