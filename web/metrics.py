"""GET /metrics: the platform's Prometheus metrics (metrics/), in the text format.

With CLAWFLEET_METRICS_TOKEN set, a scraper sends it as `Authorization: Bearer <token>`,
compared in constant time. Without it, only a loopback peer is answered: the TCP peer itself
(web.client_address.peer_address), never a header a client can write (and a proxy on the same
host is a loopback peer too, so put the token on anything that is reachable from outside)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from db.errors import AccessDenied, AuthenticationFailed
from web.api.operations import operation
from web.auth import AUTHORIZATION, bearer_token
from web.client_address import peer_address
from web.keys import CONFIG, SERVICES

PATH = "/metrics"
routes = web.RouteTableDef()


def check_scraper(peer: str | None, presented: str | None, token: SecretStr | None) -> None:
    """Raises unless this caller may read the metrics: the token when one is set, else a
    loopback peer."""
    if token is not None:
        if presented is None or not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise AuthenticationFailed("Send the metrics token: Authorization: Bearer <CLAWFLEET_METRICS_TOKEN>.",
                                       field=AUTHORIZATION)
        return
    if not _is_loopback(peer):
        raise AccessDenied("Without CLAWFLEET_METRICS_TOKEN, /metrics answers only on this machine's loopback. Set "
                           "the token to scrape from elsewhere.")


def _is_loopback(peer: str | None) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False  # a Unix socket, or nothing known: not provably this machine
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@routes.get(PATH)
@operation("The platform's metrics, in Prometheus's text format", tag="platform",
           responses={200: CONTENT_TYPE_LATEST.split(";")[0]}, errors=(401, 403), security="metrics",
           description="With CLAWFLEET_METRICS_TOKEN set, send it as a bearer token (401 without it or with another); "
                       "unset, only loopback peers are answered (403 for the others).")
async def metrics_page(request: web.Request) -> web.Response:
    check_scraper(peer_address(request), bearer_token(request), request.app[CONFIG].metrics_token)
    metrics = request.app[SERVICES].metrics
    await metrics.refresh()
    body = await asyncio.to_thread(generate_latest, metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
