"""A stand-in gateway on a real loopback server: one route for each thing a proxy can get wrong.
Steps that must happen in order wait on gates the test opens, so nothing depends on timing."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

LARGE_CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
LARGE_CHUNKS = 128  # 8 MiB in all
ENDINGS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
FLOOD_FRAME = b"\xa5" * (1024 * 1024)
GZIPPED = gzip.compress(b"the same bytes, compressed, " * 100)


@dataclass
class Seen:
    """What the gateway observed, and the gates tests open."""
    requests: list[str] = field(default_factory=list)
    gates: defaultdict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    ws_closes: list[tuple[int, str]] = field(default_factory=list)
    upload_chunks: list[int] = field(default_factory=list)
    ws_bytes: int = 0  # WebSocket payload bytes received (/ws-sink) or sent (/ws-flood) so far

    def gate(self, name: str) -> asyncio.Event:
        return self.gates[name]


def fake_gateway(seen: Seen) -> web.Application:
    routes = web.RouteTableDef()

    @routes.route("*", "/echo{tail:.*}")
    async def echo(request: web.Request) -> web.Response:
        seen.requests.append(request.raw_path)
        body = await request.read()
        return web.json_response({"method": request.method, "raw_path": request.raw_path,
                                  "headers": list(request.headers.items()), "body": body.decode()})

    @routes.post("/upload")
    async def upload(request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            seen.upload_chunks.append(len(chunk))
            seen.gate("upload began").set()
        return web.json_response({"received": total})

    @routes.get("/events")
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for number in range(3):
            await seen.gate(f"event {number}").wait()
            await response.write(f"data: event {number}\n\n".encode())
        return response

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        seen.requests.append(request.raw_path)
        await seen.gate("never").wait()
        return web.Response(text="late")

    @routes.get("/hold")
    async def hold(request: web.Request) -> web.StreamResponse:
        """Starts an answer and keeps it open until the proxy lets go of this connection."""
        seen.requests.append(request.raw_path)
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first part\n")
        try:
            await seen.gate("never").wait()
        except asyncio.CancelledError:  # the server cancels this handler when its client hangs up
            seen.gate("hold released").set()
            raise
        return response

    @routes.get("/large")
    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if "length" in request.query:
            response.content_length = len(LARGE_CHUNK) * LARGE_CHUNKS
        await response.prepare(request)
        for _ in range(LARGE_CHUNKS if request.method != "HEAD" else 0):
            await response.write(LARGE_CHUNK)
        return response

    @routes.get("/gzipped")
    async def gzipped(_: web.Request) -> web.Response:
        return web.Response(body=GZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    @routes.get("/redirect")
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    @routes.get("/cookies")
    async def cookies(_: web.Request) -> web.Response:
        response = web.Response(text="cookies")
        response.headers.add("Set-Cookie", "session=abc; Domain=127.0.0.1; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "theme=dark; Path=/; domain=.gateway.test; Secure")
        response.headers.add("Set-Cookie", "plain=1; Path=/")
        return response

    @routes.get("/dies")
    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if "length" in request.query:
            response.content_length = int(request.query["length"])
        await response.prepare(request)
        await response.write(b"the beginning of an answer that never ends")
        request.transport.close()  # the process is gone: what it wrote arrives, then nothing more
        return response

    @routes.get("/ws")
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=("chat.v2",), autoping=False)
        await socket.prepare(request)
        if "hello" in request.query:  # speaks first, as the OpenClaw gateway does
            await socket.send_str("hello")
        while (message := await socket.receive()).type not in ENDINGS:
            if message.type is WSMsgType.BINARY:
                await socket.send_bytes(message.data)
            elif message.type is WSMsgType.PING:
                await socket.pong(message.data)
                await socket.send_str(f"gateway got ping:{message.data.decode()}")
            elif message.type is WSMsgType.PONG:
                await socket.send_str(f"gateway got pong:{message.data.decode()}")
            elif message.data == "headers":
                await socket.send_str(json.dumps(list(request.headers.items())))
            elif message.data == "ping me":
                await socket.ping(b"from the gateway")
            elif message.data.startswith("close "):
                _, code, reason = message.data.split(" ", 2)
                await socket.close(code=int(code), message=reason.encode())
            elif message.data == "die":
                request.transport.abort()
            else:
                await socket.send_str(message.data)
        seen.ws_closes.append((socket.close_code, message.extra if message.type is WSMsgType.CLOSE else ""))
        seen.gate("ws closed").set()
        return socket

    @routes.get("/ws-sink")
    async def sink(request: web.Request) -> web.WebSocketResponse:
        """Reads nothing until the test opens its gate, then counts what arrives until asked."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await seen.gate("sink reads").wait()
        while (message := await socket.receive()).type is WSMsgType.BINARY:
            seen.ws_bytes += len(message.data)
        await socket.send_str(str(seen.ws_bytes))
        await socket.close()
        return socket

    @routes.get("/ws-flood")
    async def flood(request: web.Request) -> web.WebSocketResponse:
        """Sends `?mib=` MiB as fast as they are taken, then "end"."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        for _ in range(int(request.query["mib"])):
            await socket.send_bytes(FLOOD_FRAME)
            seen.ws_bytes += len(FLOOD_FRAME)
        await socket.send_str("end")
        await socket.receive()  # the client's close
        return socket

    @routes.get("/ws-refused")
    async def refused(request: web.Request) -> web.Response:
        seen.requests.append(request.raw_path)
        raise web.HTTPForbidden(text="no entry", headers={"X-Refused-By": "gateway"})

    app = web.Application()
    app.add_routes(routes)
    return app


async def started(seen: Seen) -> TestServer:
    # handler_cancellation: a handler learns that the proxy let go of its connection
    server = TestServer(fake_gateway(seen), host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    return server
