"""A WebSocket's bytes relayed between the client's connection and the gateway's once the gateway
has accepted the upgrade, as production proxies do: no frame is decoded, checked or re-encoded.

Each direction reads only its frames' headers (payloads are never unmasked), so that when one end
vanishes or the connection goes quiet the proxy can still tell the other end with a proper close
frame, put between two frames, instead of leaving it with a bare cut connection. Reading stops on
one connection while the other's write buffer is over its high-water mark: a slow reader cannot
make the proxy buffer without limit.

Taking the connections over from aiohttp depends on its internals (pinned by
tests/web/proxy/test_tunnel.py): both ends' protocols are handed a payload parser the way
`ClientSession._ws_connect` (client.py) and `WebSocketResponse._post_start` (web_ws.py) do, and
the parser is fed each read (`feed_data`) and told of the connection's loss (`feed_eof`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiohttp import WSCloseCode
from aiohttp.base_protocol import BaseProtocol
from aiohttp.client_proto import ResponseHandler
from aiohttp.web_protocol import RequestHandler

CLOSE_OPCODE = 0x8
ABORT_AFTER_S = 5.0  # for a closed connection's last bytes to leave before it is cut
# What each end hears when the other vanishes without a close frame.
GATEWAY_GONE = WSCloseCode.INTERNAL_ERROR
CLIENT_GONE = WSCloseCode.GOING_AWAY


class Frames:
    """Where the frames begin in one direction's bytes (RFC 6455 section 5.2), from their headers."""

    __slots__ = ("_skip", "_header", "closed")

    def __init__(self) -> None:
        self._skip = 0  # the current frame's payload bytes still to come
        self._header = b""  # the start of a header split between two reads
        self.closed = False  # a close frame has gone this way

    @property
    def between(self) -> bool:
        return self._skip == 0 and not self._header

    def feed(self, data: bytes) -> None:
        size = len(data)
        if self._skip >= size:  # all payload
            self._skip -= size
            return
        position = self._skip
        if self._header:
            data, size, position = self._header + data, len(self._header) + size, 0
        while position < size:
            if size - position < 2:
                break
            first, second = data[position], data[position + 1]
            length = second & 0x7F
            start = position + 2 + (2 if length == 126 else 8 if length == 127 else 0)
            payload = start + (4 if second & 0x80 else 0)  # after the mask key
            if payload > size:
                break
            if length >= 126:
                length = int.from_bytes(data[position + 2:start], "big")
            if first & 0x0F == CLOSE_OPCODE:
                self.closed = True
            position = payload + length
        self._skip = max(0, position - size)
        self._header = data[position:] if position < size else b""


def close_frame(code: int, masked: bool) -> bytes:
    """A close frame with `code` and no reason; masked when the proxy speaks as the client."""
    payload = code.to_bytes(2, "big")
    if not masked:
        return bytes((0x80 | CLOSE_OPCODE, 2)) + payload
    mask = os.urandom(4)
    return bytes((0x80 | CLOSE_OPCODE, 0x80 | 2)) + mask + bytes(byte ^ key for byte, key in zip(payload, mask))


class Direction:
    """One direction's bytes, from the source connection's protocol to the sink's transport. The
    source's protocol calls it as its payload parser."""

    def __init__(self, tunnel: Tunnel, source: BaseProtocol, sink: BaseProtocol, *, masked: bool,
                 gone: int) -> None:
        self._tunnel = tunnel
        self._source = source
        self._sink = sink
        self._transport = sink.transport  # kept: aiohttp forgets it on close
        self._masked = masked  # the sink is the gateway: the proxy's own frames to it are masked
        self.gone = gone  # what the sink hears if the source vanishes
        self.frames = Frames()
        self._ended = False
        self._drained: asyncio.Future | None = None

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """aiohttp's parser call: (protocol error, tail); never an error, whatever the bytes."""
        if not self._ended:
            self._tunnel.touch()
            self.frames.feed(data)
            self._transport.write(data)
            if self._sink.writing_paused and self._drained is None:
                self._hold()
        return False, b""

    def feed_eof(self) -> None:
        """The source's connection is lost."""
        self._tunnel.lost(self)

    def _hold(self) -> None:
        """Stop reading the source until the sink's buffer is below its low-water mark again."""
        self._source.pause_reading()
        self._drained = asyncio.ensure_future(self._sink._drain_helper())  # aiohttp's own drain
        self._drained.add_done_callback(self._release)

    def _release(self, drained: asyncio.Future) -> None:
        self._drained = None
        if not drained.cancelled() and drained.exception() is None and not self._ended:
            self._source.resume_reading()

    def end(self, code: int) -> None:
        """No more bytes this way: a close frame first if the sink has had none and one fits now."""
        if self._ended:
            return
        self._ended = True
        if self._drained is not None:
            self._drained.cancel()
        if not self._transport.is_closing():
            if not self.frames.closed and self.frames.between:
                self._transport.write(close_frame(code, self._masked))
            self._transport.close()  # after what is buffered has been written

    def abort(self) -> None:
        self._transport.abort()


class Tunnel:
    """Takes over both connections of an accepted upgrade; `ended` is set once both are closed."""

    def __init__(self, client: RequestHandler, gateway: ResponseHandler, touch: Callable[[], None]) -> None:
        self.touch = touch
        self.ended = asyncio.Event()
        self._directions = (Direction(self, client, gateway, masked=True, gone=CLIENT_GONE),
                            Direction(self, gateway, client, masked=False, gone=GATEWAY_GONE))
        self._lost = 0
        self._abort: asyncio.TimerHandle | None = None
        to_gateway, to_client = self._directions
        # Called once the 101 has gone to the client: what already came from either end is relayed now.
        # As client.py `_ws_connect`: the gateway's reads go to the parser, first what came with the
        # 101; no payload queue, the relay is its own. (The proxy's session sets no sock_read
        # timeout to lift: quiet is the watchdog's call.)
        gateway.set_parser(to_client, None)
        # As web_ws.py `_post_start`: the client's reads go to the parser (first the bytes that
        # came with the upgrade request), and the connection is not kept alive for another request.
        client.set_parser(to_gateway)
        client.keep_alive(False)

    def lost(self, direction: Direction) -> None:
        """`direction`'s source connection is lost: its sink hears why, nothing more goes to the source."""
        for each in self._directions:
            each.end(direction.gone)  # the other one's sink is the lost connection: it only stops
        self._lost += 1
        if self._lost == len(self._directions):
            if self._abort is not None:
                self._abort.cancel()
            self.ended.set()

    def close(self, code: int) -> None:
        """Both ends told with `code` (where no close frame went already), then disconnected;
        cut if their last bytes have not left in ABORT_AFTER_S."""
        if self.ended.is_set() or self._abort is not None:
            return
        for each in self._directions:
            each.end(code)
        self._abort = asyncio.get_running_loop().call_later(ABORT_AFTER_S, self._abort_all)

    def _abort_all(self) -> None:
        for each in self._directions:
            each.abort()
