"""A WebSocket through the proxy: the upgrade is an HTTP exchange under the proxy's header rules,
with the handshake end to end (the client's Sec-WebSocket-* reach the gateway, the gateway's reach
the client), and once the gateway has accepted it, web.proxy.tunnel relays the connection's bytes
both ways (pings, pongs and close frames among them) until either end closes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSCloseCode, web
from multidict import CIMultiDict

from web.proxy.headers import NO_AUTO_HEADERS
from web.proxy.pages import error_page, failure_page
from web.proxy.tunnel import Tunnel
from web.proxy.watchdog import Stalled, Watchdog

if TYPE_CHECKING:
    from web.proxy.forward import Exchange


def is_upgrade(request: web.BaseRequest) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def _offered(request: web.BaseRequest) -> list[str]:
    return [protocol.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", ())
            for protocol in value.split(",") if protocol.strip()]


async def forward(exchange: Exchange, headers: CIMultiDict[str]) -> web.StreamResponse:
    request, limits = exchange.request, exchange.limits
    # Not a handshake the gateway could accept? (Offered the client's own subprotocols, aiohttp's
    # check has nothing to warn about: which one is chosen is the gateway's business.)
    if not web.WebSocketResponse(protocols=_offered(request)).can_prepare(request).ok:
        return error_page(400)
    try:
        async with asyncio.timeout(limits.connect_timeout_s + limits.response_timeout_s):
            answer = await exchange.proxy.http.get(
                exchange.url, headers=headers, allow_redirects=False, auto_decompress=False, read_until_eof=False,
                skip_auto_headers=NO_AUTO_HEADERS, timeout=exchange.proxy.request_timeout, raise_for_status=False)
    except (aiohttp.ClientError, OSError) as error:  # TimeoutError among them
        return failure_page(error)
    try:
        if answer.status != 101 or answer.headers.get("Upgrade", "").lower() != "websocket":
            return _refused(exchange, answer)
        return await _tunnel(exchange, answer)
    finally:
        answer.close()  # the connection's slot back to the session's connector (after an upgrade, closed)


def _refused(exchange: Exchange, answer: aiohttp.ClientResponse) -> web.Response:
    if answer.status < 300:  # not a WebSocket, and not an answer the client could use either
        return error_page(502)
    return error_page(answer.status, headers=exchange.response_headers(
        answer.headers, dropped=("content-length", "content-type")))


async def _tunnel(exchange: Exchange, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    """The gateway's 101 passed to the client, then both connections relayed as bytes."""
    request = exchange.request
    response = web.StreamResponse(status=101, reason=answer.reason,
                                  headers=exchange.response_headers(answer.headers, websocket=True))
    response.force_close()
    try:
        await response.prepare(request)
    except (ConnectionError, RuntimeError):  # the client is already gone
        return response
    assert answer.connection is not None and answer.connection.protocol is not None  # kept: upgraded
    watchdog = Watchdog(exchange.limits.idle_timeout_s, request)
    tunnel = Tunnel(request.protocol, answer.connection.protocol, watchdog.touch)
    try:
        with watchdog:
            await tunnel.ended.wait()
    except Stalled:  # quiet too long, or the client's connection is gone
        pass
    finally:
        tunnel.close(WSCloseCode.GOING_AWAY)  # nothing to do once ended
    return response
