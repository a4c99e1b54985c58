"""The first answer against the second, before and after the warm-up, side by side in one run
(`bench/deploy.py --first-answer [--runtime process|docker]`).

Two platforms run at once over the same fakes: "before" (no warm-up turn; process runtime: each
instance fills its own Node compile cache) and "after" (the warm-up turn; the shared compile
cache). Rounds alternate which goes first. Each round deploys one instance and measures:

- deploy: `POST /api/instances` -> running (the warm-up included, for "after");
- first: the owner's first message -> its answer;
- second: the next message, a second later -> its answer.

Process runtime: the owner writes to their bot on the loopback fake Bot API. Docker runtime: the
fake Bot API on the host's loopback is out of the containers' reach (the egress guard), so each
message is one turn of `openclaw agent` in the main session through the runtime's exec; its CLI
start is in both the first and the second answer, and `cli` (one trivial `gateway call`)
shows about how much. One unmeasured round per platform first fills the caches.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bench.deploy import API_KEY, Platform
from bench.table import print_table, write_json
from clawfleet.platform import PLATFORM, build_app
from clawfleet.settings import Settings
from db.engine import create_engine
from db.migrate import upgrade
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram

OWNERS = itertools.count(400001)  # each round's owner, a Telegram user id of their own
CONFIGS = {"before": {"warm_up": False, "shared_compile_cache": False},
           "after": {"warm_up": True, "shared_compile_cache": True}}


@dataclass
class Round:
    deploy_s: float
    first_s: float
    second_s: float
    cli_s: float | None = None


async def open_platform(name: str, runtime: str, workdir: Path, http: aiohttp.ClientSession,
                        telegram: FakeTelegram, model: FakeModel, docker_url: str | None) -> Platform:
    settings = Settings(_env_file=None, data_dir=workdir / name, database_url=f"sqlite+aiosqlite:///{workdir / name}.db",
                        runtime=runtime, docker_url=docker_url, telegram_api_url=telegram.api_url,
                        provider_urls={"openai": f"{model.url}/v1"}, model_gateway_port=0,
                        max_instances_per_user=1000, start_timeout_s=300, max_concurrent_starts=1, **CONFIGS[name])
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    server = TestServer(await build_app(settings), host="127.0.0.1")
    await server.start_server()
    async with http.post(str(server.make_url("/api/auth/register")),
                         json={"email": f"{name}@example.com", "password": "benchmark password"}) as response:
        token = (await response.json())["token"]
    return Platform(server, http, token)


async def one_round(platform: Platform, telegram: FakeTelegram, runtime: str) -> Round:
    body = {"model_provider": "openai", "api_key": API_KEY}
    bot = user_id = None
    if runtime == "process":
        bot, user_id = telegram.add_bot(username=f"b{uuid.uuid4().hex[:8]}_bot"), next(OWNERS)
        body |= {"telegram_bot_token": bot.token, "telegram_user_id": user_id}
    began = time.perf_counter()
    created = await platform.call("POST", "/api/instances", body)
    await platform.wait_done(created["id"])
    deploy_s = time.perf_counter() - began
    row = await platform.row(created["id"])
    exec_runtime = platform.server.app[PLATFORM].runtime

    async def ask(text: str) -> float:
        sent = time.perf_counter()
        if bot is not None:
            await bot.user_sends(telegram.user(user_id, first_name="Bench"), text)
            await bot.wait_for_message(user_id, lambda m: f"fake reply to: {text}" in m.get("text", ""), timeout=300)
        else:
            result = await exec_runtime.exec(row.id, row.runtime_state, [
                "agent", "--session-key", "agent:main:main", "--message", text, "--json"])
            if f"fake reply to: {text}" not in result.output:
                raise RuntimeError(f"no answer to {text!r}: {result.output[-800:]}")
        return time.perf_counter() - sent

    first_s = await ask("hello")
    await asyncio.sleep(1)
    second_s = await ask("second")
    cli_s = None
    if bot is None:
        began = time.perf_counter()
        await exec_runtime.exec(row.id, row.runtime_state, ["gateway", "call", "health", "--json"])
        cli_s = time.perf_counter() - began
    await platform.call("DELETE", f"/api/instances/{created['id']}?purge=true")
    await platform.wait_done(created["id"])
    return Round(deploy_s, first_s, second_s, cli_s)


async def run(runtime: str, rounds: int, out: Path, docker_url: str | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="clawfleet-first-answer-"))
    async with FakeTelegram() as telegram, FakeModel() as model, aiohttp.ClientSession() as http:
        platforms = {name: await open_platform(name, runtime, workdir, http, telegram, model, docker_url)
                     for name in CONFIGS}
        for name, platform in platforms.items():  # fills the caches; not counted
            await one_round(platform, telegram, runtime)
        results: dict[str, list[Round]] = {name: [] for name in CONFIGS}
        for index in range(rounds):
            order = list(CONFIGS) if index % 2 == 0 else list(reversed(CONFIGS))
            for name in order:
                results[name].append(await one_round(platforms[name], telegram, runtime))
            line = ", ".join(f"{name}: deploy {r[-1].deploy_s:.1f} s, first {r[-1].first_s:.2f} s, "
                             f"second {r[-1].second_s:.2f} s" for name, r in results.items())
            print(f"round {index + 1}/{rounds}: {line}", flush=True)
        for platform in platforms.values():
            await platform.server.close()
    result = summary(runtime, results)
    report(result)
    write_json(result, out)
    return result


def summary(runtime: str, results: dict[str, list[Round]]) -> dict:
    result: dict = {"runtime": runtime, "rounds": len(results["before"]), "configs": CONFIGS}
    for name, rounds in results.items():
        median = {key: statistics.median(getattr(r, key) for r in rounds) for key in ("deploy_s", "first_s", "second_s")}
        median["deploy_plus_first_s"] = statistics.median(r.deploy_s + r.first_s for r in rounds)
        if rounds[0].cli_s is not None:
            median["cli_s"] = statistics.median(r.cli_s for r in rounds)
        result[name] = {"median": median, "rounds": [vars(r) for r in rounds]}
        result[name]["first_over_second"] = median["first_s"] / median["second_s"]
    result["deploy_plus_first_saved_s"] = (result["before"]["median"]["deploy_plus_first_s"]
                                           - result["after"]["median"]["deploy_plus_first_s"])
    result["deploy_slower_s"] = result["after"]["median"]["deploy_s"] - result["before"]["median"]["deploy_s"]
    result["first_answer_saved_s"] = result["before"]["median"]["first_s"] - result["after"]["median"]["first_s"]
    return result


def report(result: dict) -> None:
    rows = []
    for name in CONFIGS:
        median = result[name]["median"]
        rows += [
            (f"{name}: deploy -> running (median)", f"{median['deploy_s']:.2f} s"),
            (f"{name}: first message -> answer (median)", f"{median['first_s']:.2f} s"),
            (f"{name}: second message -> answer (median)", f"{median['second_s']:.2f} s"),
            (f"{name}: first / second", f"{result[name]['first_over_second']:.2f}x"),
            (f"{name}: deploy + first answer (median)", f"{median['deploy_plus_first_s']:.2f} s"),
        ]
        if "cli_s" in median:
            rows.append((f"{name}: one CLI call in the container (median)", f"{median['cli_s']:.2f} s"))
    rows += [
        ("deploy slower by (after - before)", f"{result['deploy_slower_s']:.2f} s"),
        ("first answer faster by (before - after)", f"{result['first_answer_saved_s']:.2f} s"),
        ("deploy + first answer faster by", f"{result['deploy_plus_first_saved_s']:.2f} s"),
    ]
    print_table(rows, heading=f"first answer, {result['runtime']} runtime, {result['rounds']} rounds")
