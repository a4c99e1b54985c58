"""The first answer against the second, before and after the warm-up, side by side in one run
(`bench/deploy.py --first-answer [--runtime process|docker]`).

Two platforms run at once over the same fakes: "before" (no warm-up turn; process runtime: each
instance fills its own Node compile cache) and "after" (the warm-up turn; the shared compile
cache). With docker, one platform whose warm-up is switched per round (the image carries its
compile cache either way). Rounds alternate which goes first. Each round deploys one instance and measures:

- deploy: `POST /api/instances` -> running (the warm-up included, for "after");
- first: the owner's first message -> its answer;
- second: the next message, a second later -> its answer.

Process runtime: the owner writes to their bot on the loopback fake Bot API. Docker runtime: the
fake Bot API on the host's loopback is out of the containers' reach (the egress guard), so each
message is sent into the main session by `openclaw gateway call chat.send` through the runtime's
exec, and answered when the fake model has answered that turn; the CLI's start is in both the
first and the second answer, and `cli` (one trivial `gateway call`) shows about how much.
(`openclaw agent` was tried first: its CLI, beside a cold first turn, pushed the container past
its memory limit and was killed.) One unmeasured round per platform first fills the caches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from bench.deploy import API_KEY, Platform, open_platform
from bench.table import print_table, write_json
from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
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


async def platform_for(name: str, runtime: str, workdir: Path, http: aiohttp.ClientSession,
                        telegram: FakeTelegram, model: FakeModel, docker_url: str | None) -> Platform:
    settings = Settings(_env_file=None, data_dir=workdir / name, database_url=f"sqlite+aiosqlite:///{workdir / name}.db",
                        runtime=runtime, docker_url=docker_url, telegram_api_url=telegram.api_url,
                        provider_urls={"openai": f"{model.url}/v1"}, model_gateway_port=0,
                        max_instances_per_user=1000, start_timeout_s=300, max_concurrent_starts=1,
                        # after its boot pass: on one docker engine, each would stop the other's containers
                        reconcile_interval_s=10**6, **CONFIGS[name])
    return await open_platform(settings, http, f"{name}@example.com")


async def one_round(platform: Platform, telegram: FakeTelegram, model: FakeModel, runtime: str,
                    name: str) -> Round:
    manager = platform.server.app[PLATFORM].manager
    manager.config = dataclasses.replace(manager.config, warm_up=CONFIGS[name]["warm_up"])
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
        else:  # admitted by chat.send; answered when the fake model has answered that turn
            seen = len(model.requests)
            result = await exec_runtime.exec(row.id, row.runtime_state, [
                "gateway", "call", "chat.send", "--json", "--params",
                json.dumps({"sessionKey": "agent:main:main", "message": text, "idempotencyKey": uuid.uuid4().hex})])
            if result.exit_code != 0:
                raise RuntimeError(f"chat.send of {text!r} failed (exit {result.exit_code}): {result.output[-800:]}")
            while not any(r.user_text == text and r.body and r.body.get("tools") for r in model.requests[seen:]):
                if time.perf_counter() - sent > 300:
                    raise RuntimeError(f"no model turn for {text!r}")
                await asyncio.sleep(0.05)
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
        if runtime == "docker":
            # One platform, the warm-up switched per round: two on one engine would each install
            # the egress guard for its own model gateway port only, and stop the other's containers.
            shared = await platform_for("after", runtime, workdir, http, telegram, model, docker_url)
            platforms = {name: shared for name in CONFIGS}
        else:
            platforms = {name: await platform_for(name, runtime, workdir, http, telegram, model, docker_url)
                         for name in CONFIGS}
        for name, platform in platforms.items():  # fills the caches; not counted
            await one_round(platform, telegram, model, runtime, name)
        results: dict[str, list[Round]] = {name: [] for name in CONFIGS}
        for index in range(rounds):
            order = list(CONFIGS) if index % 2 == 0 else list(reversed(CONFIGS))
            for name in order:
                results[name].append(await one_round(platforms[name], telegram, model, runtime, name))
            line = ", ".join(f"{name}: deploy {r[-1].deploy_s:.1f} s, first {r[-1].first_s:.2f} s, "
                             f"second {r[-1].second_s:.2f} s" for name, r in results.items())
            print(f"round {index + 1}/{rounds}: {line}", flush=True)
        for platform in {id(p): p for p in platforms.values()}.values():
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
