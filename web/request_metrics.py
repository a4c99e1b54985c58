"""Counts and times every request by the route it matched: the route's canonical pattern
(`/api/instances/{id}`), never the raw path, so the label takes as many values as the app has
routes. A path no route matches is `unmatched`, a request on an instance's own host
`instance_site`, and a method the app does not know `other`."""

from __future__ import annotations

import time

from aiohttp import web

from metrics import Metrics
from web.errors import Handler
from web.keys import INSTANCE_HOST, SERVICES

UNMATCHED = "unmatched"
INSTANCE_SITE = "instance_site"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: web.Request) -> str:
    if request.get(INSTANCE_HOST) is not None:
        return INSTANCE_SITE
    match = request.match_info
    if match.http_exception is not None or match.route.resource is None:
        return UNMATCHED
    return match.route.resource.canonical


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.monotonic()
    status = 500  # what the client gets when a handler's error escapes every middleware
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        record(request.app[SERVICES].metrics, request, status, time.monotonic() - began)


def record(metrics: Metrics, request: web.Request, status: int, seconds: float) -> None:
    route, method = route_label(request), request.method if request.method in METHODS else "other"
    metrics.http_requests.labels(route, method, str(status)).inc()
    metrics.http_latency.labels(route, method).observe(seconds)
