"""An upgraded WebSocket relayed as bytes: the handshake end to end, bytes that arrive with either
side's handshake, extensions the two ends agree on, reading paused while the other end is slow;
and the aiohttp internals that taking the connections over depends on."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Callable

from aiohttp import WSMsgType
from aiohttp.base_protocol import BaseProtocol
from aiohttp.client_proto import ResponseHandler
from aiohttp.web_protocol import RequestHandler
from yarl import URL

from tests.web.proxy.conftest import KEY, settled
from tests.web.proxy.fake_gateway import FLOOD_FRAME
from web.proxy.tunnel import Frames, close_frame

WAIT_S = 10  # only bounds a hang
STALL_S = 0.5  # no progress for this long: stalled
FLOOD_MIB = 96  # well beyond what the loopback sockets' buffers hold on the way
# RFC 6455 section 1.3's example key, and the accept the gateway must answer it with
CLIENT_KEY, ITS_ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_aiohttp_internals_the_tunnel_relies_on_are_still_there() -> None:
    """web/proxy/tunnel.py takes both connections over as aiohttp's own WebSockets do. If this
    fails, aiohttp changed how: re-read client.py `_ws_connect`, web_ws.py `_post_start`, and
    `set_parser`, `data_received` and `connection_lost` in client_proto.py and web_protocol.py."""
    assert list(inspect.signature(ResponseHandler.set_parser).parameters) == [
        "self", "parser", "payload", "data_received_cb"]
    assert list(inspect.signature(RequestHandler.set_parser).parameters) == ["self", "parser", "data_received_cb"]
    # each read goes to the parser, whose first result says whether to stop; its loss to feed_eof
    assert "= self._payload_parser.feed_data(data)" in inspect.getsource(ResponseHandler.data_received)
    assert "= self._payload_parser.feed_data(data)" in inspect.getsource(RequestHandler.data_received)
    assert "self._payload_parser.feed_eof()" in inspect.getsource(ResponseHandler.connection_lost)
    assert "self._payload_parser.feed_eof()" in inspect.getsource(RequestHandler.connection_lost)
    # bytes that came with the handshake wait for the parser
    assert "self._drain_tail()" in inspect.getsource(ResponseHandler.set_parser)
    assert "self._message_tail" in inspect.getsource(RequestHandler.set_parser)
    # flow control: the sink's paused writing, its drain, and reading paused on the source
    assert isinstance(BaseProtocol.writing_paused, property)
    assert inspect.iscoroutinefunction(BaseProtocol._drain_helper)
    assert {"pause_reading", "resume_reading"} <= set(vars(BaseProtocol))
    assert callable(RequestHandler.keep_alive)


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the gateway's next frame, unmasked as a server sends it."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length >= 126:
        length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def test_the_handshake_is_end_to_end_and_bytes_sent_with_it_arrive(proxied, seen) -> None:
    async with proxied() as p:
        url = URL(p.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(  # the upgrade and a first frame in one write, before any answer
                f"GET /ws?hello HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n\r\n".encode() + _masked(0x1, b"headers"))
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)).decode().split("\r\n")
            assert head[0].startswith("HTTP/1.1 101 ")
            answer = {name.lower(): value for name, value in (line.split(": ", 1) for line in head[1:] if line)}
            assert answer["sec-websocket-accept"] == ITS_ACCEPT  # the gateway's, for the client's own key
            assert answer["sec-websocket-protocol"] == "chat.v2"
            assert (answer["upgrade"].lower(), answer["connection"].lower()) == ("websocket", "upgrade")
            assert await asyncio.wait_for(_frame(reader), WAIT_S) == (0x1, b"hello")  # sent with its 101
            opcode, payload = await asyncio.wait_for(_frame(reader), WAIT_S)
            seen_headers = {name.lower(): value for name, value in json.loads(payload)}
            assert opcode == 0x1 and seen_headers["sec-websocket-key"] == CLIENT_KEY
            assert seen_headers["sec-websocket-protocol"] == "chat.v1, chat.v2"
            writer.write(_masked(0x8, (4000).to_bytes(2, "big") + b"done"))
            assert (await asyncio.wait_for(_frame(reader), WAIT_S))[0] == 0x8  # the gateway's reply
        finally:
            writer.close()
        await settled(p)
    assert seen.ws_closes == [(4000, "done")]


async def test_extensions_the_two_ends_agree_on_are_theirs(proxied) -> None:
    async with proxied() as p, p.client.ws_connect(p.at("/ws"), compress=15) as socket:
        assert socket.compress == 15  # permessage-deflate, agreed with the gateway through the proxy
        await socket.send_str("squeeze me " * 100)
        assert (await asyncio.wait_for(socket.receive(), WAIT_S)).data == "squeeze me " * 100


async def _stalled(progress: Callable[[], int], total: int) -> int:
    """The count once it has stopped growing for STALL_S (or reached `total`)."""
    last = -1
    while (now := progress()) != last and now < total:
        last = now
        await asyncio.sleep(STALL_S)
    return now


async def test_a_gateway_slow_to_read_holds_the_client_back(proxied, seen) -> None:
    total = FLOOD_MIB * len(FLOOD_FRAME)
    sent = 0
    async with proxied() as p, p.client.ws_connect(p.at("/ws-sink")) as socket:
        async def send() -> None:
            nonlocal sent
            for _ in range(FLOOD_MIB):
                await socket.send_bytes(FLOOD_FRAME)
                sent += len(FLOOD_FRAME)

        sending = asyncio.create_task(send())
        try:
            assert await _stalled(lambda: sent, total) < total  # the proxy stopped reading the client
            seen.gate("sink reads").set()
            await asyncio.wait_for(sending, WAIT_S)  # and started again
        finally:
            sending.cancel()
        await socket.send_str("total?")
        assert (await asyncio.wait_for(socket.receive(), WAIT_S)).data == str(total)
    await settled(p)


async def test_a_client_slow_to_read_holds_the_gateway_back(proxied, seen) -> None:
    total = FLOOD_MIB * len(FLOOD_FRAME)
    async with proxied() as p, p.client.ws_connect(p.at(f"/ws-flood?mib={FLOOD_MIB}"), max_msg_size=0) as socket:
        assert await _stalled(lambda: seen.ws_bytes, total) < total  # the proxy stopped reading the gateway
        received = 0
        while (message := await asyncio.wait_for(socket.receive(), WAIT_S)).type is WSMsgType.BINARY:
            received += len(message.data)
        assert (message.data, received) == ("end", total)
        assert p.proxy.open_count(KEY) == 1
    await settled(p)


def test_frame_boundaries_are_found_from_headers_split_anywhere() -> None:
    long_payload = b"x" * 70000  # a 64-bit length
    stream = (_masked(0x1, b"a" * 125) + bytes((0x82, 126)) + (300).to_bytes(2, "big") + b"b" * 300
              + bytes((0x82, 127)) + len(long_payload).to_bytes(8, "big") + long_payload + close_frame(1000, True))
    for cut in (1, 2, 3, 7, 131, 133, 135, 500, len(stream) - 3):
        frames = Frames()
        frames.feed(stream[:cut])
        frames.feed(stream[cut:])
        assert frames.between and frames.closed, cut
    frames = Frames()
    frames.feed(stream[:140])
    assert not frames.between and not frames.closed
