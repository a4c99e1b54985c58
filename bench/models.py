"""Model gateway overhead (model_gateway/): model calls through the gateway against the same
calls straight to the model provider, measured side by side in the same run.

- Streams: a streamed completion of exactly 200 content deltas (one Server-Sent Event each),
  in the OpenAI Chat Completions and the Anthropic Messages shapes, one request at a time,
  direct and through the gateway alternately. TTFB is the time from sending the request to
  the first bytes of the answer's body (the first event); total, to the end of the stream.
  Twice: the fake sending its events back to back (0 ms: the gateway's cost per byte, events
  arriving a few at a time), and paced `--chunk-delay-ms` apart as a model's tokens are (the
  gateway's cost per event, each arriving alone). Read the added TTFB (gateway median minus
  direct median) against the target of 5 ms, and the ratios.
- Throughput: small non-streamed Chat Completions calls from `--concurrency` clients for
  `--seconds` per side and round, rounds alternating which side goes first; requests per
  second through the gateway over those straight to the fake, against the target of 0.6x.

The provider is the tests' fake (tests/fakes/model.py), the gateway the one the platform
runs (tests/model_gateway/conftest.py builds it as the platform does) over a migrated
database: SQLite in a temporary folder, or with `--database-url` a throwaway database on that
PostgreSQL server. Its usage book flushes every second, as in production, during the
measurement; the table ends with how many of the gateway's calls reached the database.
Both requests carry `stream_options.include_usage`, so both sides get the same bytes (the
gateway would add it otherwise). The fake and the gateway each run in a process of their own,
and the clients (one aiohttp session) in this one: each server has its own event loop, as in
production, and no side's loop also runs the clients; on a two-core machine the three
processes share the cores during the throughput runs (the gateway's hop costs CPU there too),
while the one-at-a-time streams hardly overlap.

    .venv/bin/python -m bench.models [--repetitions 200] [--paced-repetitions 40] [--chunk-delay-ms 1]
        [--concurrency 32] [--seconds 4] [--rounds 3] [--database-url URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bench.api import summary
from bench.table import print_table, write_json
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import ModelUsage
from db.sealing import KeyRing, generate_key
from tests.fakes.model import FakeModel
from tests.model_gateway.conftest import REAL_KEYS, Caller, add_caller, gateway_before
from tests.support.services import PostgresServer

CHUNKS = 200
STREAM_PROMPT = "stream"
STREAM_REPLY = " ".join(f"w{number}" for number in range(CHUNKS))  # the fake streams a word a delta
SHORT_REPLY = "ok"
FLUSH_INTERVAL_S = 1.0  # the usage book's default in the platform
TARGET_ADDED_TTFB_MS = 5.0
TARGET_THROUGHPUT_RATIO = 0.6
PROVIDERS = ("openai", "anthropic")


@dataclass(frozen=True)
class Shape:
    name: str
    provider: str
    tail: str  # the path after the provider's base URL: the gateway route's tail
    body: dict


def chat(text: str, stream: bool) -> dict:
    body: dict = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": text}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


SHAPES = (
    Shape("Chat Completions", "openai", "/chat/completions", chat(STREAM_PROMPT, stream=True)),
    Shape("Anthropic Messages", "anthropic", "/v1/messages",
          {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
           "messages": [{"role": "user", "content": STREAM_PROMPT}]}),
)
SMALL_CALL = Shape("Chat Completions, not streamed", "openai", "/chat/completions", chat("hi", stream=False))


@dataclass(frozen=True)
class ModelAt:
    """A fake model served by another process: all gateway_before needs of it."""

    url: str


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]


def reply(text: str) -> str:
    return STREAM_REPLY if text == STREAM_PROMPT else SHORT_REPLY


# -- the servers, each in a process of its own ------------------------------------------------------
def serve_models(chunk_delays_s: list[float], stop, ready) -> None:
    """One fake model per chunk delay; their URLs go to `ready`."""
    async def main() -> None:
        async with AsyncExitStack() as stack:
            models = [await stack.enter_async_context(FakeModel(reply, chunk_delay_s=delay))
                      for delay in chunk_delays_s]
            ready.put([model.url for model in models])
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    asyncio.run(main())


def serve_gateways(database_url: str, model_urls: list[str], stop, ready) -> None:
    """One model gateway in front of each fake, over one database, and an instance per provider
    with its credential; (the gateways' ports, the callers) go to `ready`."""
    async def main() -> None:
        engine = create_engine(database_url)
        sessions = create_session_factory(engine)
        keyring = KeyRing.from_encoded([generate_key()])
        try:
            async with AsyncExitStack() as stack:
                gateways = [await stack.enter_async_context(
                    gateway_before(ModelAt(url), sessions, keyring, flush_interval_s=FLUSH_INTERVAL_S))
                    for url in model_urls]
                callers = {provider: await add_caller(sessions, keyring, gateways[0], provider)
                           for provider in PROVIDERS}
                ready.put(([gateway.port for gateway in gateways], callers))
                await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        finally:
            await engine.dispose()
    asyncio.run(main())


async def started(context, target, *args) -> tuple[object, object]:
    """(the process, what it put on its queue once serving)."""
    ready = context.Queue()
    process = context.Process(target=target, args=(*args, ready), daemon=True)
    process.start()
    return process, await asyncio.get_running_loop().run_in_executor(None, ready.get, True, 60)


def sides(shape: Shape, model_url: str, port: int, caller: Caller) -> dict[str, Target]:
    """The same call straight to the fake with the real key, and through the gateway with the
    instance's credential."""
    base = f"{model_url}/v1" if shape.provider == "openai" else model_url  # as the gateway's upstreams
    route = f"http://127.0.0.1:{port}/i/{caller.instance_id}"
    return {"direct": Target(base + shape.tail, caller.headers(REAL_KEYS[shape.provider])),
            "gateway": Target(route + shape.tail, caller.headers())}


# -- the clients ------------------------------------------------------------------------------------
async def streamed(http: aiohttp.ClientSession, target: Target, body: bytes) -> tuple[float, float, bytes]:
    """(seconds to the first body bytes, seconds to the end, the body)."""
    began = time.perf_counter()
    async with http.post(target.url, data=body, headers=target.headers) as response:
        received = bytearray(await response.content.readany())
        first = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"{target.url} answered {response.status}: {bytes(received)[:300]!r}")
        while chunk := await response.content.readany():
            received += chunk
    return first, time.perf_counter() - began, bytes(received)


def content_deltas(body: bytes) -> int:
    """The events of a streamed answer that carry reply text, in either shape."""
    count = 0
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            event = json.loads(line[6:])
            choices = event.get("choices") or [{}]
            count += event.get("type") == "content_block_delta" or bool(choices[0].get("delta", {}).get("content"))
    return count


async def measure_streams(http: aiohttp.ClientSession, targets: dict[str, dict[str, Target]], repetitions: int,
                          warmup: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Seconds to the first byte and to the end of each stream, by shape and side; the sides
    alternate which goes first, the shapes take turns."""
    bodies = {shape.name: json.dumps(shape.body).encode() for shape in SHAPES}
    for name, by_side in targets.items():
        for side, target in by_side.items():
            *_, answer = await streamed(http, target, bodies[name])
            if content_deltas(answer) != CHUNKS:
                raise RuntimeError(f"{name} {side}: {content_deltas(answer)} content deltas, not {CHUNKS}")
            for _ in range(warmup):
                await streamed(http, target, bodies[name])
    measured = {name: {side: {"ttfb": [], "total": []} for side in by_side} for name, by_side in targets.items()}
    for number in range(repetitions):
        for name, by_side in targets.items():
            for side in list(by_side)[::1 if number % 2 == 0 else -1]:
                first, total, _ = await streamed(http, by_side[side], bodies[name])
                measured[name][side]["ttfb"].append(first)
                measured[name][side]["total"].append(total)
    return measured


async def calls_for(http: aiohttp.ClientSession, target: Target, body: bytes, concurrency: int,
                    seconds: float) -> tuple[float, list[float]]:
    """(wall seconds, each call's seconds) of `concurrency` clients calling until `seconds` are up."""
    async def client(deadline: float) -> list[float]:
        latencies = []
        while (began := time.perf_counter()) < deadline:
            async with http.post(target.url, data=body, headers=target.headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{target.url} answered {response.status}")
            latencies.append(time.perf_counter() - began)
        return latencies

    began = time.perf_counter()
    each = await asyncio.gather(*(client(began + seconds) for _ in range(concurrency)))
    return time.perf_counter() - began, [latency for latencies in each for latency in latencies]


async def measure_throughput(http: aiohttp.ClientSession, targets: dict[str, Target], concurrency: int,
                             seconds: float, rounds: int) -> dict[str, dict]:
    body = json.dumps(SMALL_CALL.body).encode()
    for target in targets.values():
        await calls_for(http, target, body, concurrency, min(seconds, 1.0))  # warm-up: connections, caches
    measured = {side: (0.0, []) for side in targets}
    for number in range(rounds):
        for side in list(targets)[::1 if number % 2 == 0 else -1]:
            wall_s, latencies = await calls_for(http, targets[side], body, concurrency, seconds)
            measured[side] = (measured[side][0] + wall_s, measured[side][1] + latencies)
    return {side: summary(*each) for side, each in measured.items()}


# -- the run ----------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict:
    paced = [(args.chunk_delay_ms, args.paced_repetitions)] if args.chunk_delay_ms and args.paced_repetitions else []
    scenarios = [(0.0, args.repetitions)] + paced  # (ms between events, repetitions)
    postgres = PostgresServer(args.database_url) if args.database_url else None
    with tempfile.TemporaryDirectory(prefix="clawfleet-bench-models-") as tmp:
        database_url = await postgres.create_database() if postgres else f"sqlite+aiosqlite:///{tmp}/bench.db"
        try:
            engine = create_engine(database_url)
            await upgrade(engine)
            result = await run_against(args, scenarios, database_url)
            async with engine.connect() as conn:
                result["metered_requests"] = (await conn.execute(select(func.sum(ModelUsage.requests)))).scalar()
            await engine.dispose()
        finally:
            if postgres:
                await postgres.drop_all()
    result["database"] = "postgresql" if postgres else "sqlite"
    report(result)
    write_json(result, args.json)
    return result


async def run_against(args: argparse.Namespace, scenarios: list[tuple[float, int]], database_url: str) -> dict:
    context = get_context("spawn")
    stop = context.Event()
    processes = []
    loop = asyncio.get_running_loop()
    try:
        models, model_urls = await started(context, serve_models, [ms / 1000 for ms, _ in scenarios], stop)
        processes.append(models)
        gateways, (ports, callers) = await started(context, serve_gateways, database_url, model_urls, stop)
        processes.append(gateways)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            streams = []
            for (delay_ms, repetitions), model_url, port in zip(scenarios, model_urls, ports):
                targets = {shape.name: sides(shape, model_url, port, callers[shape.provider]) for shape in SHAPES}
                measured = await measure_streams(http, targets, repetitions, args.warmup)
                streams += [stream_result(name, delay_ms, repetitions, by_side) for name, by_side in measured.items()]
                print(f"streams {delay_ms:g} ms apart done", flush=True)
            throughput = await measure_throughput(
                http, sides(SMALL_CALL, model_urls[0], ports[0], callers[SMALL_CALL.provider]),
                args.concurrency, args.seconds, args.rounds)
    finally:
        stop.set()
        for process in processes:  # the gateways flush what is left on the way out
            await loop.run_in_executor(None, process.join, 30)
    gateway_calls = sum(stream["repetitions"] for stream in streams)
    return {"chunks": CHUNKS, "warmup": args.warmup, "flush_interval_s": FLUSH_INTERVAL_S, "streams": streams,
            "throughput": throughput_result(throughput, args), "targets": {
                "added_ttfb_median_ms_at_most": TARGET_ADDED_TTFB_MS,
                "requests_per_s_ratio_at_least": TARGET_THROUGHPUT_RATIO},
            # every call through a gateway is metered, warm-ups too: at least these
            "gateway_calls_timed": gateway_calls + throughput["gateway"]["requests"]}


def distribution(seconds: list[float]) -> dict:
    return {"median_ms": statistics.median(seconds) * 1000, "p95_ms": statistics.quantiles(seconds, n=100)[94] * 1000}


def stream_result(name: str, delay_ms: float, repetitions: int, by_side: dict[str, dict[str, list[float]]]) -> dict:
    result: dict = {"shape": name, "chunk_delay_ms": delay_ms, "repetitions": repetitions}
    for side, times in by_side.items():
        result[side] = {"ttfb": distribution(times["ttfb"]), "total": distribution(times["total"])}
    direct, gateway = result["direct"], result["gateway"]
    result["added_ttfb_median_ms"] = gateway["ttfb"]["median_ms"] - direct["ttfb"]["median_ms"]
    result["added_total_median_ms"] = gateway["total"]["median_ms"] - direct["total"]["median_ms"]
    result["ratios"] = {f"{what}_{stat}": gateway[what][f"{stat}_ms"] / direct[what][f"{stat}_ms"]
                        for what in ("ttfb", "total") for stat in ("median", "p95")}
    result["target_met"] = result["added_ttfb_median_ms"] <= TARGET_ADDED_TTFB_MS
    return result


def throughput_result(measured: dict[str, dict], args: argparse.Namespace) -> dict:
    ratio = measured["gateway"]["requests_per_s"] / measured["direct"]["requests_per_s"]
    return {"call": SMALL_CALL.name, "concurrency": args.concurrency, "seconds_per_side_and_round": args.seconds,
            "rounds": args.rounds, **measured, "ratio": ratio, "target_met": ratio >= TARGET_THROUGHPUT_RATIO}


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _times(each: dict) -> str:
    ttfb, total = each["ttfb"], each["total"]
    return (f"TTFB median {ttfb['median_ms']:7.2f} ms  p95 {ttfb['p95_ms']:7.2f} ms   "
            f"total median {total['median_ms']:7.2f} ms  p95 {total['p95_ms']:7.2f} ms")


def report(result: dict) -> None:
    rows = []
    for stream in result["streams"]:
        title = f"{stream['shape']}, {stream['chunk_delay_ms']:g} ms apart"
        rows.append((f"{title}: direct", _times(stream["direct"])))
        rows.append(("  gateway", _times(stream["gateway"])))
        ratios = stream["ratios"]
        rows.append(("  added", f"TTFB {stream['added_ttfb_median_ms']:+.2f} ms (target <= {TARGET_ADDED_TTFB_MS:g} "
                                f"ms: {_verdict(stream['target_met'])})   total {stream['added_total_median_ms']:+.2f} ms"))
        rows.append(("  gateway / direct", f"TTFB median {ratios['ttfb_median']:.2f} x  p95 {ratios['ttfb_p95']:.2f} x"
                                           f"   total median {ratios['total_median']:.2f} x  p95 "
                                           f"{ratios['total_p95']:.2f} x"))
    throughput = result["throughput"]
    for side in ("direct", "gateway"):
        each = throughput[side]
        rows.append((f"{throughput['call']}: {side}" if side == "direct" else "  gateway",
                     f"{each['requests_per_s']:7.0f} req/s  median {each['median_ms']:6.2f} ms  "
                     f"p95 {each['p95_ms']:6.2f} ms"))
    rows.append(("  gateway / direct", f"{throughput['ratio']:7.3f} x req/s (target >= {TARGET_THROUGHPUT_RATIO:g}: "
                                       f"{_verdict(throughput['target_met'])})"))
    rows.append(("usage rows: requests metered", f"{result['metered_requests']} (timed through the gateways, "
                                                 f"warm-ups left out: {result['gateway_calls_timed']})"))
    streams = result["streams"]
    print_table(rows, heading=f"{result['database']}; streams of {result['chunks']} deltas, one at a time, "
                              f"{' and '.join(str(s['repetitions']) for s in streams[::len(SHAPES)])} repetitions "
                              f"per side; {throughput['concurrency']} concurrent clients, "
                              f"{throughput['seconds_per_side_and_round']:g} s x {throughput['rounds']} rounds per side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=200, help="streams per shape and side, events back to back")
    parser.add_argument("--paced-repetitions", type=int, default=40, help="streams per shape and side, events paced")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="between paced events; 0: no paced streams")
    parser.add_argument("--warmup", type=int, default=10, help="streams per shape and side before measuring")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="of small calls per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test) to make a "
                             "throwaway database on; default: SQLite in a temporary folder")
    parser.add_argument("--json", type=Path, default=Path("bench/results/models.json"))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
