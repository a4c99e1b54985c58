"""A WebSocket through the proxy: the gateway's socket first, then the client's, with the
client's chosen subprotocol, and every frame relayed as it comes (pings and pongs too, so
liveness is end to end), close codes and reasons passed on both ways."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

from web.proxy.pages import error_page, failure_page
from web.proxy.watchdog import Stalled, Watchdog

if TYPE_CHECKING:
    from web.proxy.forward import Exchange

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # well above the gateway's largest frames (its hello snapshot)
CLOSE_TIMEOUT_S = 5.0  # for the other end's reply to a close frame
# What each end hears when the other vanishes without a close frame.
GATEWAY_GONE = WSCloseCode.INTERNAL_ERROR
CLIENT_GONE = WSCloseCode.GOING_AWAY
UNSENDABLE = {WSCloseCode.ABNORMAL_CLOSURE, 1005, 1015}  # codes that describe a close, never travel in one

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def is_upgrade(request: web.BaseRequest) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def requested_protocols(request: web.BaseRequest) -> list[str]:
    return [protocol.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", ())
            for protocol in value.split(",") if protocol.strip()]


async def forward(exchange: Exchange, headers: CIMultiDict[str]) -> web.StreamResponse:
    request, limits = exchange.request, exchange.limits
    if not web.WebSocketResponse().can_prepare(request).ok:
        return error_page(400)
    try:
        async with asyncio.timeout(limits.connect_timeout_s + limits.response_timeout_s):
            gateway = await exchange.proxy.http.ws_connect(
                exchange.url, headers=headers, protocols=requested_protocols(request), autoclose=False,
                autoping=False, max_msg_size=MAX_MESSAGE_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT_S))
    except aiohttp.WSServerHandshakeError as refused:
        if refused.status < 300:  # not a WebSocket, and not an answer the client could use either
            return error_page(502)
        answer = exchange.response_headers(refused.headers or {}, dropped=("content-length", "content-type"))
        return error_page(refused.status, headers=answer)
    except (aiohttp.ClientError, OSError) as error:  # TimeoutError among them
        return failure_page(error)
    try:
        client = web.WebSocketResponse(protocols=[gateway.protocol] if gateway.protocol else (), autoclose=False,
                                       autoping=False, max_msg_size=MAX_MESSAGE_BYTES, timeout=CLOSE_TIMEOUT_S)
        await client.prepare(request)
        await relay(client, gateway, Watchdog(limits.idle_timeout_s, request))
    finally:
        await gateway.close(code=CLIENT_GONE)  # does nothing once the relay closed it
    return client


async def relay(client: web.WebSocketResponse, gateway: aiohttp.ClientWebSocketResponse, watchdog: Watchdog) -> None:
    pumps = [asyncio.create_task(pump(client, gateway, watchdog, sink_gone=GATEWAY_GONE, source_gone=CLIENT_GONE)),
             asyncio.create_task(pump(gateway, client, watchdog, sink_gone=CLIENT_GONE, source_gone=GATEWAY_GONE))]
    try:
        with watchdog:
            await asyncio.wait(pumps)
    except Stalled:  # quiet too long, or the client's connection is gone
        pass
    finally:
        for each in pumps:
            each.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for end in (client, gateway):
            await _close(end, WSCloseCode.GOING_AWAY)


async def pump(source: Socket, sink: Socket, watchdog: Watchdog, *, sink_gone: int, source_gone: int) -> None:
    """Frames from source to sink until one of them closes. `sink_gone` is the code the source hears
    when the sink has vanished, `source_gone` the one the sink hears when the source has."""
    while True:
        message = await source.receive()
        watchdog.touch()
        try:
            if message.type is WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type is WSMsgType.PING:
                await sink.ping(message.data)
            elif message.type is WSMsgType.PONG:
                await sink.pong(message.data)
            elif message.type is WSMsgType.CLOSE:  # pass it on, then answer the closer with the other's reply
                await _close(sink, message.data, (message.extra or "").encode())
                await _close(source, sink.close_code or message.data)
                return
            elif message.type is WSMsgType.CLOSING:  # the other pump is closing this socket
                return
            else:  # CLOSED or ERROR: the source's connection ended without a close frame
                await _close(sink, source_gone)
                return
        except (ConnectionError, aiohttp.ClientError, RuntimeError):  # the sink's connection is gone
            await _close(source, sink_gone)
            return


async def _close(end: Socket, code: int | None, reason: bytes = b"") -> None:
    if not code or code in UNSENDABLE:
        code = WSCloseCode.OK if code == 1005 else WSCloseCode.GOING_AWAY
    try:
        await end.close(code=code, message=reason)
    except (ConnectionError, aiohttp.ClientError, RuntimeError):
        pass  # already gone: nothing to tell it
