"""Deploy overhead: ClawFleet's `POST /api/instances` -> running, against the same OpenClaw
gateway started by hand on the same config -> /readyz, in interleaved pairs (one at a time).

Also measures the RSS of one idle gateway (all processes of its session) and the time from a
user's first message to their bot's first answer (fake Bot API and fake model on loopback).

    .venv/bin/python -m bench.deploy [--pairs 10] [--runtime process|docker] [--out FILE]

With --runtime docker (bench/deploy_docker.py): platform vs the same container started straight on
the engine vs upstream's `openclaw fleet create`, on the same image.

With --first-answer (bench/first_answer.py), for either runtime: deploy -> ready, ready -> first
answer and the second answer, without and with the warm-up turn, side by side.

    .venv/bin/python -m bench.deploy --first-answer [--rounds 5] [--runtime process|docker]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bench.table import print_table, write_json
from clawfleet.platform import PLATFORM, build_app
from clawfleet.settings import Settings
from db.engine import create_engine
from db.migrate import upgrade
from db.models import Instance
from provisioner.openclaw.config import write_secret_files
from provisioner.openclaw.install import find_install
from provisioner.runtimes import procfs
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram

API_KEY = "sk-proj-bench0bench0bench0bench0bench0"


class Platform:
    def __init__(self, server: TestServer, http: aiohttp.ClientSession, token: str) -> None:
        self.server, self.http, self.token = server, http, token

    async def call(self, method: str, path: str, body: dict | None = None) -> dict:
        async with self.http.request(method, str(self.server.make_url(path)), json=body,
                                     headers={"Authorization": f"Bearer {self.token}"}) as response:
            return await response.json()

    async def wait_done(self, instance_id: str) -> None:
        url = str(self.server.make_url(f"/api/instances/{instance_id}/progress"))
        async with self.http.get(url, headers={"Authorization": f"Bearer {self.token}"}) as response:
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["failed"]:
                        raise RuntimeError(event["reason"])
                    if event["done"]:
                        return

    async def row(self, instance_id: str) -> Instance:
        async with self.server.app[PLATFORM].sessions() as session:
            return await session.get(Instance, uuid.UUID(instance_id))


async def open_platform(settings: Settings, http: aiohttp.ClientSession, email: str = "bench@example.com") -> Platform:
    """The platform on a migrated database, served on loopback, with one account signed in."""
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    server = TestServer(await build_app(settings), host="127.0.0.1")
    await server.start_server()
    async with http.post(str(server.make_url("/api/auth/register")),
                         json={"email": email, "password": "benchmark password"}) as response:
        token = (await response.json())["token"]
    return Platform(server, http, token)


async def platform_deploy(platform: Platform, body: dict) -> tuple[float, str]:
    began = time.perf_counter()
    created = await platform.call("POST", "/api/instances", body)
    await platform.wait_done(created["id"])
    return time.perf_counter() - began, created["id"]


async def bare_start(install, home: Path, env: dict[str, str], port: int, http: aiohttp.ClientSession) -> tuple[float, int]:
    """The same gateway, same config and environment, started by hand; time to /readyz."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *install.argv("gateway", "run"), cwd=home, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    return time.perf_counter() - began, process.pid
        except (aiohttp.ClientError, TimeoutError):
            pass
        if process.returncode is not None:
            raise RuntimeError(f"bare gateway exited with {process.returncode}")
        await asyncio.sleep(0.1)


async def stop_session(pid: int) -> None:
    import signal

    procfs.signal_session(pid, signal.SIGTERM)
    for _ in range(100):
        if not procfs.session_alive(pid):
            return
        await asyncio.sleep(0.1)
    procfs.signal_session(pid, signal.SIGKILL)


def fresh_copy(template: tuple[Path, str, dict[str, str], int, dict[str, str]], home: Path) -> Path:
    """The same config in a new, empty instance directory, as the platform starts each deploy."""
    old_home, config_text, _, _, secrets = template
    for sub in ("state", "home", "cache", "tmp", "logs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "openclaw.json").write_text(config_text.replace(str(old_home), str(home)))
    (home / "openclaw.json").chmod(0o600)
    write_secret_files(home / "secrets", secrets)  # the token files the config reads
    return home


def gateway_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def session_rss_mb(leader: int) -> float:
    total_kb = 0
    for pid in procfs.session_members(leader):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


async def run(pairs: int, out: Path) -> dict:
    runtime_dir = Path(os.environ.get("CLAWFLEET_RUNTIME_DIR", Path.home() / ".cache/clawfleet/runtime"))
    version = Settings(_env_file=None).openclaw_version
    install = find_install(runtime_dir, version)
    if install is None:
        sys.exit(f"OpenClaw {version} is not installed in {runtime_dir}: run `clawfleet runtime install`")
    workdir = Path(tempfile.mkdtemp(prefix="clawfleet-bench-"))
    async with FakeTelegram() as telegram, FakeModel() as model, aiohttp.ClientSession() as http:
        settings = Settings(_env_file=None, data_dir=workdir / "data",
                            database_url=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
                            runtime="process", runtime_dir=runtime_dir, telegram_api_url=telegram.api_url,
                            provider_urls={"openai": f"{model.url}/v1"}, max_instances_per_user=1000,
                            start_timeout_s=300, max_concurrent_starts=1,
                            warm_up=False)  # the bare start has none: --first-answer measures it
        platform = await open_platform(settings, http)
        server = platform.server
        runtime = server.app[PLATFORM].runtime
        body = {"model_provider": "openai", "api_key": API_KEY}

        platform_s: list[float] = []
        bare_s: list[float] = []
        rss_mb: float | None = None
        template: tuple[Path, str, dict[str, str], int, dict[str, str]] | None = None
        for index in range(pairs):
            order = ("platform", "bare") if index % 2 == 0 or template is None else ("bare", "platform")
            for kind in order:
                if kind == "platform":
                    seconds, instance_id = await platform_deploy(platform, body)
                    platform_s.append(seconds)
                    row = await platform.row(instance_id)
                    if rss_mb is None:
                        await asyncio.sleep(20)  # let it settle to idle
                        rss_mb = session_rss_mb(row.runtime_state["pid"])
                    home = runtime.instance_dir(row.id)
                    env = gateway_environment(row.runtime_state["pid"])  # exactly what the platform gave it
                    secrets = {path.name: path.read_text() for path in (home / "secrets").iterdir()}
                    template = (home, (home / "openclaw.json").read_text(), env, row.port, secrets)
                    await platform.call("DELETE", f"/api/instances/{instance_id}?purge=true")
                    await platform.wait_done(instance_id)
                else:
                    bare_home = fresh_copy(template, workdir / f"bare-{index}")
                    old_home, _, env, port, _ = template
                    env = {k: v.replace(str(old_home), str(bare_home)) for k, v in env.items()}
                    seconds, pid = await bare_start(install, bare_home, env, port, http)
                    bare_s.append(seconds)
                    await stop_session(pid)
            print(f"pair {index + 1}/{pairs}: platform {platform_s[-1]:.2f} s, bare {bare_s[-1]:.2f} s", flush=True)

        first_answer_s = await first_answer(platform, telegram, model)
        await server.close()

    platform_median, bare_median = statistics.median(platform_s), statistics.median(bare_s)
    ratios = [p / b for p, b in zip(platform_s, bare_s)]
    result = {
        "openclaw_version": version,
        "pairs": pairs,
        "platform_to_running_s": platform_s,
        "bare_to_readyz_s": bare_s,
        "platform_median_s": platform_median,
        "bare_median_s": bare_median,
        "median_ratio": statistics.median(ratios),
        "overhead_ms": (platform_median - bare_median) * 1000,
        "overhead_pct": (platform_median / bare_median - 1) * 100,
        "idle_gateway_rss_mb": rss_mb,
        "first_message_to_first_answer_s": first_answer_s,
    }
    report(result)
    write_json(result, out)
    return result


async def first_answer(platform: Platform, telegram: FakeTelegram, model: FakeModel) -> float:
    bot = telegram.add_bot(username="bench_assistant_bot")
    user_id = 424242
    created = await platform.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": API_KEY, "telegram_bot_token": bot.token,
        "telegram_user_id": user_id})
    await platform.wait_done(created["id"])
    began = time.perf_counter()
    await bot.user_sends(telegram.user(user_id, first_name="Bench"), "hello")
    await bot.wait_for_message(user_id, lambda m: "fake" in m.get("text", ""), timeout=300)
    seconds = time.perf_counter() - began
    await platform.call("DELETE", f"/api/instances/{created['id']}?purge=true")
    await platform.wait_done(created["id"])
    return seconds


def report(result: dict) -> None:
    print_table([
        ("platform: POST /api/instances -> running (median)", f"{result['platform_median_s']:.2f} s"),
        ("bare: openclaw gateway run -> /readyz (median)", f"{result['bare_median_s']:.2f} s"),
        ("median ratio platform / bare", f"{result['median_ratio']:.3f}"),
        ("platform overhead", f"{result['overhead_ms']:.0f} ms ({result['overhead_pct']:.1f} %)"),
        ("idle gateway RSS (whole session)", f"{result['idle_gateway_rss_mb']:.0f} MB"),
        ("first message -> first answer", f"{result['first_message_to_first_answer_s']:.1f} s"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--docker-url", default=os.environ.get("CLAWFLEET_DOCKER_URL") or os.environ.get("DOCKER_HOST"))
    parser.add_argument("--first-answer", action="store_true", help="the first answer, before and after the warm-up")
    parser.add_argument("--rounds", type=int, default=5, help="with --first-answer")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: bench/results/deploy[-docker].json, first-answer-<runtime>.json")
    args = parser.parse_args()
    if args.first_answer:
        from bench.first_answer import run as run_first_answer

        asyncio.run(run_first_answer(args.runtime, args.rounds,
                                     args.out or Path(f"bench/results/first-answer-{args.runtime}.json"), args.docker_url))
    elif args.runtime == "docker":
        from bench.deploy_docker import run as run_docker

        asyncio.run(run_docker(args.pairs, args.out or Path("bench/results/deploy-docker.json"), args.docker_url))
    else:
        asyncio.run(run(args.pairs, args.out or Path("bench/results/deploy.json")))


if __name__ == "__main__":
    main()
