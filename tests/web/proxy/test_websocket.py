"""WebSockets through the proxy: frames of every kind both ways, the subprotocol, close codes
and reasons passed on, the same header rules as HTTP, and a refusal passed back as it was."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.web.proxy.conftest import KEY, settled
from tests.web.proxy.proxy_server import CLIENT_ADDRESS, PUBLIC_HOST

WAIT_S = 10  # only bounds a hang


async def _next(socket: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await asyncio.wait_for(socket.receive(), WAIT_S)


async def test_text_and_binary_frames_go_both_ways_with_the_chosen_subprotocol(proxied, caplog) -> None:
    async with proxied() as p, p.client.ws_connect(p.at("/ws"), protocols=("chat.v1", "chat.v2")) as socket:
        assert socket.protocol == "chat.v2"  # the gateway's choice among the client's
        assert not [r for r in caplog.records if "overlap" in r.getMessage()]  # nothing to warn about
        await socket.send_str("héllo")
        assert (await _next(socket)).data == "héllo"
        await socket.send_bytes(b"\x00\xffbinary")
        message = await _next(socket)
        assert (message.type, message.data) == (WSMsgType.BINARY, b"\x00\xffbinary")
        assert p.proxy.open_count(KEY) == 1


async def test_pings_and_pongs_travel_end_to_end(proxied) -> None:
    async with proxied() as p, p.client.ws_connect(p.at("/ws"), autoping=False) as socket:
        await socket.ping(b"from the client")
        pong = await _next(socket)
        assert (pong.type, pong.data) == (WSMsgType.PONG, b"from the client")
        assert (await _next(socket)).data == "gateway got ping:from the client"

        await socket.send_str("ping me")
        ping = await _next(socket)
        assert (ping.type, ping.data) == (WSMsgType.PING, b"from the gateway")
        await socket.pong(ping.data)
        assert (await _next(socket)).data == "gateway got pong:from the gateway"


async def test_the_clients_close_code_and_reason_reach_the_gateway(proxied, seen) -> None:
    async with proxied() as p:
        socket = await p.client.ws_connect(p.at("/ws"))
        await socket.send_str("ready?")
        await _next(socket)
        await socket.close(code=4001, message=b"bye now")
        await asyncio.wait_for(seen.gate("ws closed").wait(), WAIT_S)
        assert seen.ws_closes == [(4001, "bye now")]
        await settled(p)


async def test_the_gateways_close_code_and_reason_reach_the_client(proxied) -> None:
    async with proxied() as p:
        socket = await p.client.ws_connect(p.at("/ws"), autoclose=False)
        await socket.send_str("close 4002 shutting down")
        message = await _next(socket)
        assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4002, "shutting down")
        await socket.close(code=4002)
        await settled(p)


async def test_the_handshake_follows_the_header_rules(proxied) -> None:
    async with proxied(set_headers={"X-Owner": "ada@example.com"}) as p:
        headers = {"X-Forwarded-For": "6.6.6.6", "X-Owner": "mallory", "Origin": f"https://{PUBLIC_HOST}"}
        async with p.client.ws_connect(p.at("/ws"), headers=headers) as socket:
            await socket.send_str("headers")
            seen_headers = dict((name.lower(), value) for name, value in json.loads((await _next(socket)).data))
    assert seen_headers["x-forwarded-for"] == CLIENT_ADDRESS
    assert seen_headers["x-forwarded-host"] == PUBLIC_HOST
    assert seen_headers["x-owner"] == "ada@example.com"
    assert seen_headers["origin"] == f"https://{PUBLIC_HOST}"
    assert seen_headers["upgrade"].lower() == "websocket"


async def test_a_refused_upgrade_is_passed_back_as_that_status(proxied, seen) -> None:
    async with proxied() as p:
        async with p.client.get(p.at("/ws-refused"), headers={
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as response:
            assert response.status == 403
            assert response.headers["X-Refused-By"] == "gateway"
            assert "127.0.0.1" not in await response.text()
        assert seen.requests == ["/ws-refused"]
        assert p.proxy.open_count(KEY) == 0


async def test_a_gateway_that_vanishes_closes_the_clients_socket(proxied, caplog) -> None:
    async with proxied() as p:
        socket = await p.client.ws_connect(p.at("/ws"))
        await socket.send_str("die")
        message = await _next(socket)
        assert message.type is WSMsgType.CLOSE and message.data in (1011, 1001)
        await socket.close()
        await settled(p)
    assert not [record for record in caplog.records if record.levelno >= 40]


@pytest.mark.parametrize("handler_cancellation", [True, False])
async def test_a_client_that_vanishes_closes_the_gateways_socket(proxied, seen, handler_cancellation) -> None:
    async with proxied(handler_cancellation=handler_cancellation) as p:
        socket = await p.client.ws_connect(p.at("/ws"))
        await socket.send_str("ready?")
        await _next(socket)
        socket._response.connection.transport.abort()  # the browser tab is gone: no close frame
        await asyncio.wait_for(seen.gate("ws closed").wait(), WAIT_S)
        assert seen.ws_closes == [(1001, "")]
        await settled(p)

