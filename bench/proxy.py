"""Reverse proxy overhead (web/proxy): a small GET through the proxy against the same GET
straight to the upstream's port, and the round trip of WebSocket messages (send, await the echo)
through the proxy against straight to the echo server, measured side by side in the same run.
A third side takes the whole path of an owner's request: the platform's instance host (routing
by host, the host's cookie, the session behind it, then the proxy; bench/instance_site.py).

The GET's upstream is a real OpenClaw gateway (its Control UI's `/`, compressed as a browser
asks for it), started by the process runtime as the tests do; run it under the engine lock:
`flock /tmp/clawfleet-engine.lock .venv/bin/python -m bench.proxy`. Without an OpenClaw install,
or with `--upstream aiohttp`, the GET goes to an aiohttp handler returning the same bytes.
The WebSocket's upstream is an aiohttp echo server (the proxy's cost against the fastest possible
answer), and with OpenClaw installed also the gateway itself, answering `health` requests on its
socket as the Control UI's requests are answered. Each server runs in a process of its own:
the clients, the echo server and the proxy (served as the platform serves, with
handler_cancellation); rounds alternate the order of the targets.

    .venv/bin/python -m bench.proxy [--rounds 3] [--concurrency 10] [--requests 200] [--messages 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack
from multiprocessing import get_context
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.api import client_process, summary
from bench.instance_site import serve_instance_hosts
from bench.table import print_table, write_json
from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from provisioner.openclaw.install import find_install
from tests.support.openclaw_fixtures import RUNTIME_DIR
from tests.web.proxy.proxy_server import serving_proxy
from tests.support.control_ui import answer, operator_client
from tests.web.proxy.real_gateway import GATEWAY_TOKEN, running_gateway
from web.proxy import Upstream

GET_PATH = "/"
BROWSER_HEADERS = {"Accept": "text/html", "Accept-Encoding": "gzip, deflate"}


def echo_app(page: bytes, headers: dict[str, str]) -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(message.data)
        return socket

    async def get(_: web.Request) -> web.Response:
        return web.Response(body=page, headers=headers)

    async def ready(_: web.Request) -> web.Response:  # as a gateway's, for the platform's readiness probe
        return web.json_response({"ready": True})

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get(GET_PATH, get)
    app.router.add_get("/readyz", ready)
    return app


def serve_upstream(page: bytes, headers: dict[str, str], ready, stop) -> None:
    """The aiohttp upstream, in a process of its own: a WebSocket echo, and the captured page."""
    async def main() -> None:
        runner = web.AppRunner(echo_app(page, headers), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ready.put(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await runner.cleanup()
    asyncio.run(main())


def serve_proxy(upstream_url: str, ready, stop) -> None:
    async def main() -> None:
        async with serving_proxy(Upstream(upstream_url, "bench")) as (url, _):
            ready.put(url)
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    asyncio.run(main())


async def round_trips(url: str, headers: dict[str, str], messages: int, warmup: int) -> tuple[float, list[float]]:
    """(wall seconds, each message's round trip) over one WebSocket, one message at a time."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        async def one(text: str) -> float:
            began = time.perf_counter()
            await socket.send_str(text)
            answer = await socket.receive()
            if answer.data != text:
                raise RuntimeError(f"{url} echoed {answer.data!r}")
            return time.perf_counter() - began

        for number in range(warmup):
            await one(f"warm-up {number}")
        began = time.perf_counter()
        latencies = [await one(f'{{"type":"req","id":"{number}","method":"health"}}') for number in range(messages)]
        return time.perf_counter() - began, latencies


def ws_client_process(url: str, headers: dict[str, str], messages: int, warmup: int) -> tuple[float, list[float]]:
    return asyncio.run(round_trips(url, headers, messages, warmup))


async def gateway_round_trips(url: str, headers: dict[str, str], messages: int,
                              warmup: int) -> tuple[float, list[float]]:
    """(wall seconds, each request's round trip) of `health` requests on the gateway's own socket."""
    async with aiohttp.ClientSession() as http, operator_client(http, url, GATEWAY_TOKEN, headers) as socket:
        async def one(number: int) -> float:
            began = time.perf_counter()
            await socket.send_json({"type": "req", "id": str(number), "method": "health", "params": {}})
            if not (await answer(socket, str(number))).get("ok"):
                raise RuntimeError(f"{url} did not answer health")
            return time.perf_counter() - began

        for number in range(warmup):
            await one(number)
        began = time.perf_counter()
        latencies = [await one(number) for number in range(messages)]
        return time.perf_counter() - began, latencies


def gateway_client_process(url: str, headers: dict[str, str], messages: int,
                           warmup: int) -> tuple[float, list[float]]:
    return asyncio.run(gateway_round_trips(url, headers, messages, warmup))


async def captured(url: str) -> tuple[bytes, dict[str, str]]:
    async with aiohttp.ClientSession(auto_decompress=False) as http, http.get(url, headers=BROWSER_HEADERS) as answer:
        kept = {name: answer.headers[name] for name in ("Content-Type", "Content-Encoding") if name in answer.headers}
        return await answer.read(), kept


async def run(args: argparse.Namespace) -> dict:
    install = find_install(RUNTIME_DIR, DEFAULT_OPENCLAW_VERSION) if args.upstream == "openclaw" else None
    if args.upstream == "openclaw" and install is None:
        print(f"OpenClaw {DEFAULT_OPENCLAW_VERSION} is not installed in {RUNTIME_DIR}: the GET goes to aiohttp")
    args.gateway = install is not None  # the gateway's own socket is measured too
    context = get_context("spawn")
    stop = context.Event()
    async with AsyncExitStack() as stack:
        gateway_url = None
        if install is not None:
            workdir = Path(tempfile.mkdtemp(prefix="clawfleet-bench-proxy-"))
            gateway_url = await stack.enter_async_context(running_gateway(workdir / "data", install))
            page, headers = await captured(gateway_url + GET_PATH)
        else:
            page, headers = b"<!doctype html><title>OpenClaw</title>" + b"x" * 5000, {"Content-Type": "text/html"}
        loop = asyncio.get_running_loop()

        async def started(target, *args) -> object:
            ready = context.Queue()
            process = context.Process(target=target, args=(*args, ready, stop), daemon=True)
            process.start()
            servers.append(process)
            return await loop.run_in_executor(None, ready.get, True, 60)

        servers: list = []
        try:
            echo_url = f"http://127.0.0.1:{await started(serve_upstream, page, headers)}"
            get_upstream = gateway_url or echo_url
            get_proxy = await started(serve_proxy, get_upstream)
            ws_proxy = await started(serve_proxy, echo_url)
            platform, (get_owner, ws_owner) = await started(serve_instance_hosts, [get_upstream, echo_url])
            result = await measure(
                args, {"direct": (get_upstream, {}), "proxied": (get_proxy, {}), "instance host": (platform, get_owner)},
                {"direct": (echo_url, {}), "proxied": (ws_proxy, {}), "instance host": (platform, ws_owner)})
        finally:
            stop.set()
            for process in servers:
                await loop.run_in_executor(None, process.join, 10)
    result["websocket_gateway"] = bool(args.gateway)
    result["get_upstream"] = f"OpenClaw {install.version} gateway, GET {GET_PATH}" if install else "aiohttp handler"
    result["get_bytes"] = len(page)
    result["websocket_upstream"] = "aiohttp echo server"
    report(result)
    write_json(result, args.json)
    return result


async def measure(args: argparse.Namespace, gets: dict[str, tuple[str, dict[str, str]]],
                  sockets: dict[str, tuple[str, dict[str, str]]]) -> dict:
    """Each side is (base URL, the headers its client sends: Host and cookie for the instance host)."""
    loop = asyncio.get_running_loop()
    measured_gets = {side: (0.0, []) for side in gets}
    measured_alone = {side: (0.0, []) for side in gets}
    measured_ws = {side: (0.0, []) for side in sockets}
    measured_gateway_ws = {side: (0.0, []) for side in gets}
    sides = list(gets)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as client:
        for index in range(args.rounds):
            for side in sides[index % len(sides):] + sides[:index % len(sides)]:  # each round starts elsewhere
                url, headers = gets[side]
                wall_s, latencies = await loop.run_in_executor(
                    client, client_process, url + GET_PATH, BROWSER_HEADERS | headers, args.concurrency,
                    args.requests, args.warmup)
                measured_gets[side] = (measured_gets[side][0] + wall_s, measured_gets[side][1] + latencies)
                wall_s, latencies = await loop.run_in_executor(  # one at a time: the proxy's own latency, no queue
                    client, client_process, url + GET_PATH, BROWSER_HEADERS | headers, 1, args.requests, args.warmup)
                measured_alone[side] = (measured_alone[side][0] + wall_s, measured_alone[side][1] + latencies)
                url, headers = sockets[side]
                wall_s, latencies = await loop.run_in_executor(
                    client, ws_client_process, url + "/ws", headers, args.messages, args.warmup)
                measured_ws[side] = (measured_ws[side][0] + wall_s, measured_ws[side][1] + latencies)
                if args.gateway:
                    url, headers = gets[side]
                    wall_s, latencies = await loop.run_in_executor(
                        client, gateway_client_process, url + "/", headers, args.gateway_messages, args.warmup // 10)
                    measured_gateway_ws[side] = (measured_gateway_ws[side][0] + wall_s,
                                                 measured_gateway_ws[side][1] + latencies)
            print(f"round {index + 1}/{args.rounds} done", flush=True)
    result: dict = {"rounds": args.rounds, "concurrency": args.concurrency,
                    "requests_per_task_per_round": args.requests, "messages_per_round": args.messages}
    for side in sides:
        key = _key(side)
        result[f"get_{key}"] = summary(*measured_gets[side])
        result[f"get_alone_{key}"] = summary(*measured_alone[side])
        result[f"websocket_{key}"] = _round_trips(*measured_ws[side])
        if args.gateway:
            result[f"websocket_gateway_{key}"] = _round_trips(*measured_gateway_ws[side])
    result["targets"] = {"requests_per_s_ratio_at_least": 0.6, "added_median_ms_at_most": 2.0,
                         "websocket_ratio_at_most": 1.5}
    for side in sides[1:]:
        key = _key(side)
        ratios = {"requests_per_s": result[f"get_{key}"]["requests_per_s"] / result["get_direct"]["requests_per_s"],
                  "added_median_ms": result[f"get_{key}"]["median_ms"] - result["get_direct"]["median_ms"],
                  "added_median_ms_alone": (result[f"get_alone_{key}"]["median_ms"]
                                            - result["get_alone_direct"]["median_ms"]),
                  "websocket": (result[f"websocket_{key}"]["seconds_per_1000"]
                                / result["websocket_direct"]["seconds_per_1000"])}
        if args.gateway:
            ratios["websocket_gateway"] = (result[f"websocket_gateway_{key}"]["seconds_per_1000"]
                                           / result["websocket_gateway_direct"]["seconds_per_1000"])
        result[f"ratios_{key}"] = ratios
        result[f"targets_met_{key}"] = {"requests_per_s": ratios["requests_per_s"] >= 0.6,
                                        "added_median_ms": ratios["added_median_ms"] <= 2.0,
                                        "added_median_ms_alone": ratios["added_median_ms_alone"] <= 2.0,
                                        "websocket": ratios["websocket"] <= 1.5}
        if args.gateway:
            result[f"targets_met_{key}"]["websocket_gateway"] = ratios["websocket_gateway"] <= 1.5
    return result


def _round_trips(wall_s: float, latencies: list[float]) -> dict:
    return {"messages": len(latencies), "seconds_per_1000": wall_s / len(latencies) * 1000,
            "median_ms": statistics.median(latencies) * 1000,
            "p95_ms": statistics.quantiles(latencies, n=100)[94] * 1000}


def _key(side: str) -> str:
    return side.replace(" ", "_")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _get_row(each: dict) -> str:
    return f"{each['requests_per_s']:7.0f} req/s  median {each['median_ms']:6.2f} ms  p95 {each['p95_ms']:6.2f} ms"


def report(result: dict) -> None:
    rows = []
    sides = ("direct", "proxied", "instance host")
    for label, prefix in (("GET", "get"), ("GET, one client", "get_alone")):
        for side in sides:
            rows.append((f"{label} {side}", _get_row(result[f"{prefix}_{_key(side)}"])))
        for side in sides[1:]:
            ratios, met = result[f"ratios_{_key(side)}"], result[f"targets_met_{_key(side)}"]
            if prefix == "get":
                rows.append((f"  {side} / direct", f"{ratios['requests_per_s']:7.3f} x req/s (target >= 0.6: "
                                                   f"{_verdict(met['requests_per_s'])})"))
            added = "added_median_ms" if prefix == "get" else "added_median_ms_alone"
            rows.append((f"  {side}: added median", f"{ratios[added]:7.2f} ms (target <= 2 ms: "
                                                    f"{_verdict(met[added])})"))
    for side in sides:
        each = result[f"websocket_{_key(side)}"]
        rows.append((f"WebSocket {side}", f"{each['seconds_per_1000'] * 1000:7.1f} ms per 1,000 round trips  "
                                          f"median {each['median_ms']:6.3f} ms  p95 {each['p95_ms']:6.3f} ms"))
    for side in sides[1:]:
        ratio, met = result[f"ratios_{_key(side)}"]["websocket"], result[f"targets_met_{_key(side)}"]["websocket"]
        rows.append((f"  {side} / direct", f"{ratio:7.3f} x (target <= 1.5: {_verdict(met)})"))
    if "websocket_gateway_direct" in result:
        for side in sides:
            each = result[f"websocket_gateway_{_key(side)}"]
            rows.append((f"WebSocket to the gateway {side}",
                         f"{each['seconds_per_1000'] * 1000:7.1f} ms per 1,000 health requests  "
                         f"median {each['median_ms']:6.3f} ms  p95 {each['p95_ms']:6.3f} ms"))
        for side in sides[1:]:
            ratio = result[f"ratios_{_key(side)}"]["websocket_gateway"]
            met = result[f"targets_met_{_key(side)}"]["websocket_gateway"]
            rows.append((f"  {side} / direct", f"{ratio:7.3f} x (target <= 1.5: {_verdict(met)})"))
    print_table(rows, heading=f"GET upstream: {result['get_upstream']} ({result['get_bytes']} bytes), "
                              f"{result['concurrency']} concurrent clients, "
                              f"{result['concurrency'] * result['requests_per_task_per_round'] * result['rounds']} "
                              f"requests per target; WebSocket upstream: {result['websocket_upstream']}, "
                              f"{result['messages_per_round'] * result['rounds']} messages per target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="per client task and round")
    parser.add_argument("--messages", type=int, default=1000, help="WebSocket round trips per target and round")
    parser.add_argument("--warmup", type=int, default=200, help="requests (or messages) before each measurement")
    parser.add_argument("--upstream", choices=("openclaw", "aiohttp"), default="openclaw", help="for the GET")
    parser.add_argument("--gateway-messages", type=int, default=1000,
                        help="health requests on the gateway's socket per target and round (with OpenClaw)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/proxy.json"))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
