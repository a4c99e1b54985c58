"""Web app overhead: the real platform app answering `GET /api/instances/{id}` (bearer token) and
`GET /dashboard` (signed-in session cookie), against a bare aiohttp handler on another loopback
server returning the same bytes, measured side by side in the same run; and the platform once
more with its read caches off (db/read_cache.py), to show what they are worth.

The platform is the one `clawfleet serve` builds, over SQLite in a temporary folder, with the
in-memory runtime (one instance, running). The client runs in a process of its own (the
machine's second core), with `--concurrency` tasks of `--requests` requests each per round, after
a warm-up; rounds alternate the order of the targets. `/dashboard` is measured only when it
answers 200.

    .venv/bin/python -m bench.api [--rounds 3] [--concurrency 10] [--requests 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.table import print_table, write_json
from clawfleet.settings import Settings
from tests.fakes.telegram import FakeTelegram
from web.keys import CONFIG
from tests.support.api_client import Api, migrated, running_api
from tests.support.memory_runtime import MemoryRuntime

API_KEY = "sk-proj-bench0bench0bench0bench0bench0"
EMAIL, PASSWORD = "bench@example.com", "benchmark password"


async def requests_from_tasks(url: str, headers: dict[str, str], concurrency: int, requests: int,
                              warmup: int) -> tuple[float, list[float]]:
    """(wall seconds, each request's seconds) for `concurrency` tasks of `requests` requests each,
    over kept-alive connections; every answer must be a 200."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def one() -> float:
            began = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {url} answered {response.status}")
            return time.perf_counter() - began

        async def task(count: int) -> list[float]:
            return [await one() for _ in range(count)]

        await asyncio.gather(*(task(max(1, warmup // concurrency)) for _ in range(concurrency)))
        began = time.perf_counter()
        latencies = await asyncio.gather(*(task(requests) for _ in range(concurrency)))
        return time.perf_counter() - began, [seconds for each in latencies for seconds in each]


def client_process(url: str, headers: dict[str, str], concurrency: int, requests: int,
                   warmup: int) -> tuple[float, list[float]]:
    return asyncio.run(requests_from_tasks(url, headers, concurrency, requests, warmup))


def bare_app(bodies: dict[str, tuple[bytes, str]]) -> web.Application:
    """One route per captured answer, each returning its bytes as they are: the floor for aiohttp."""
    app = web.Application()
    for path, (body, content_type) in bodies.items():
        async def handler(_: web.Request, body: bytes = body, content_type: str = content_type) -> web.Response:
            return web.Response(body=body, content_type=content_type)
        app.router.add_get(path, handler)
    return app


async def capture(api: Api, path: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
    async with api.http.get(api.url(path), headers=headers) as response:
        return response.status, await response.read(), response.content_type


async def signed_in_platform(api: Api) -> tuple[str, str, str]:
    """(instance id, API token, session token) for one user with one running instance."""
    status, body = await api.call("POST", "/api/auth/register", {"email": EMAIL, "password": PASSWORD})
    assert status == 201, body
    api.token = body["token"]
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": API_KEY})
    assert status == 202, created
    await api.wait_status(created["id"], "running", timeout=60)
    status, login = await api.call("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert status == 200, login
    return created["id"], body["token"], login["token"]


def summary(wall_s: float, latencies: list[float]) -> dict:
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall_s,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": statistics.quantiles(latencies, n=100)[94] * 1000,
    }


async def run(rounds: int, concurrency: int, requests: int, warmup: int, out: Path) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="clawfleet-bench-api-"))
    runtime = MemoryRuntime()
    async with FakeTelegram() as telegram:
        settings = Settings(_env_file=None, data_dir=workdir / "data", telegram_api_url=telegram.api_url,
                            database_url=f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
        await migrated(settings)
        async with running_api(settings, runtime) as api:
            result = await measure(api, rounds, concurrency, requests, warmup)
    await runtime.close()
    report(result)
    write_json(result, out)
    return result


async def measure(api: Api, rounds: int, concurrency: int, requests: int, warmup: int) -> dict:
    instance_id, api_token, session_token = await signed_in_platform(api)
    bearer = {"Authorization": f"Bearer {api_token}"}
    cookie = {"Cookie": f"{api.server.app[CONFIG].session_cookie}={session_token}"}
    targets = {"instance": (f"/api/instances/{instance_id}", bearer)}
    dashboard_status, *_ = await capture(api, "/dashboard", cookie)
    if dashboard_status == 200:
        targets["dashboard"] = ("/dashboard", cookie)
    bodies = {}
    for name, (path, headers) in targets.items():
        _, body, content_type = await capture(api, path, headers)
        bodies[f"/{name}"] = (body, content_type)
    bare = TestServer(bare_app(bodies), host="127.0.0.1")
    await bare.start_server()

    urls = {}  # label -> (url, headers, the platform's read cache on)
    for name, (path, headers) in targets.items():
        urls[f"platform {name}"] = (api.url(path), headers, True)
        urls[f"uncached {name}"] = (api.url(path), headers, False)
        urls[f"bare {name}"] = (str(bare.make_url(f"/{name}")), {}, True)
    measured: dict[str, tuple[float, list[float]]] = {label: (0.0, []) for label in urls}
    loop = asyncio.get_running_loop()
    caches = (api.platform.accounts.credentials, api.platform.instances.views)
    ttl_s = {cache: cache.ttl_s for cache in caches}
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as client:
        for index in range(rounds):
            order = list(urls) if index % 2 == 0 else list(reversed(urls))
            for label in order:
                url, headers, cached = urls[label]
                for cache in caches:  # the same server with CLAWFLEET_READ_CACHE_TTL_S=0, so to speak
                    cache.ttl_s = ttl_s[cache] if cached else 0
                wall_s, latencies = await loop.run_in_executor(client, client_process, url, headers,
                                                               concurrency, requests, warmup)
                measured[label] = (measured[label][0] + wall_s, measured[label][1] + latencies)
            print(f"round {index + 1}/{rounds} done", flush=True)
    await bare.close()

    result: dict = {"rounds": rounds, "concurrency": concurrency, "requests_per_task_per_round": requests,
                    "dashboard_available": "dashboard" in targets, "dashboard_status": dashboard_status}
    for label, (wall_s, latencies) in measured.items():
        result[label.replace(" ", "_")] = summary(wall_s, latencies)
    for name in targets:
        floor = result[f"bare_{name}"]
        for side, key in (("platform", f"{name}_ratios"), ("uncached", f"{name}_uncached_ratios")):
            measured_side = result[f"{side}_{name}"]
            result[key] = {
                "requests_per_s": measured_side["requests_per_s"] / floor["requests_per_s"],
                "median": measured_side["median_ms"] / floor["median_ms"],
                "p95": measured_side["p95_ms"] / floor["p95_ms"],
            }
    return result


def report(result: dict) -> None:
    labels = {"instance": "GET /api/instances/{id} (bearer)", "dashboard": "GET /dashboard (session cookie)"}
    rows = []
    for name, title in labels.items():
        if f"platform_{name}" not in result:
            rows.append((f"platform {title}", f"not available (answered {result['dashboard_status']})"))
            continue
        sides = {"platform": f"platform {title}", "uncached": "  same, read cache off",
                 "bare": "bare aiohttp handler, same bytes"}
        for side, side_title in sides.items():
            each = result[f"{side}_{name}"]
            rows.append((side_title, f"{each['requests_per_s']:7.0f} req/s  median {each['median_ms']:6.2f} ms  "
                                     f"p95 {each['p95_ms']:6.2f} ms"))
        for side, key in (("platform", f"{name}_ratios"), ("read cache off", f"{name}_uncached_ratios")):
            ratios = result[key]
            rows.append((f"  ratio {side} / bare", f"{ratios['requests_per_s']:7.3f} req/s  "
                                                   f"median {ratios['median']:6.2f} x    p95 {ratios['p95']:6.2f} x"))
    print_table(rows, heading=f"{result['concurrency']} concurrent clients, "
                              f"{result['concurrency'] * result['requests_per_task_per_round'] * result['rounds']} "
                              "requests per target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="per client task and round")
    parser.add_argument("--warmup", type=int, default=200, help="requests before each measurement")
    parser.add_argument("--json", type=Path, default=Path("bench/results/api.json"))
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.concurrency, args.requests, args.warmup, args.json))


if __name__ == "__main__":
    main()
