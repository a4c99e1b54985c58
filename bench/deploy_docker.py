"""Deploy time with the docker runtime, side by side in one run (`bench/deploy.py --runtime docker`):

- platform: `POST /api/instances` -> `running` (database, lease, progress, readiness wait);
- bare: the same container (same image, spec and config) started straight on the engine
  through the runtime, -> `/readyz`: what the engine and OpenClaw cost without the platform;
- cold: the same again without the image's compile cache (NODE_COMPILE_CACHE unset), to show
  what the cache saves;
- fleet: upstream's `openclaw fleet create` on the same image -> `/readyz`.

Rounds are interleaved and rotate the order. Also: the idle memory of one instance's container
and how many would fit in 20 GiB (extrapolated, not started).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiodocker
import aiohttp
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bench.table import print_table, write_json
from clawfleet.platform import build_app
from clawfleet.settings import Settings
from db.engine import create_engine
from db.migrate import upgrade
from provisioner.openclaw.install import find_install
from provisioner.ports import can_bind
from provisioner.providers import get_provider
from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.docker import DockerConfig, DockerRuntime
from provisioner.runtimes.docker_spec import container_name

API_KEY = "sk-proj-bench0bench0bench0bench0bench0"
NOWHERE = "http://127.0.0.1:9/v1"  # inside the container: nothing listens, nothing leaves
BUDGET_GIB = 20
_DEFAULTS = Settings(_env_file=None)
# fleet gets the same limits as ours: the operator's defaults for each gateway
PLAN_CPUS, PLAN_MEMORY_MB = _DEFAULTS.instance_cpus, _DEFAULTS.instance_memory_mb


async def wait_ready(http: aiohttp.ClientSession, url: str, began: float, timeout: float = 300) -> float:
    while time.perf_counter() - began < timeout:
        try:
            async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return time.perf_counter() - began
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} was not ready within {timeout} s")


def free_port(start: int = 26000) -> int:
    return next(port for port in range(start, start + 1000) if can_bind(port))


async def platform_round(http, server: TestServer, token: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    async with http.post(str(server.make_url("/api/instances")), headers=headers,
                         json={"model_provider": "openai", "api_key": API_KEY}) as response:
        created = await response.json()
    async with http.get(str(server.make_url(f"/api/instances/{created['id']}/progress")), headers=headers) as stream:
        async for raw in stream.content:
            line = raw.decode().strip()
            if line.startswith("data:") and (event := json.loads(line[5:]))["done"] | event["failed"]:
                if event["failed"]:
                    raise RuntimeError(event["reason"])
                break
    seconds = time.perf_counter() - began
    async with http.delete(str(server.make_url(f"/api/instances/{created['id']}?purge=true")), headers=headers):
        pass
    async with http.get(str(server.make_url(f"/api/instances/{created['id']}/progress")), headers=headers) as stream:
        await stream.read()
    return seconds


async def bare_round(http, runtime: DockerRuntime) -> float:
    instance_id = uuid.uuid4()
    request = LaunchRequest(instance_id, free_port(), "openai", get_provider("openai").default_model,
                            SecretStr(API_KEY), SecretStr(uuid.uuid4().hex), model_url=NOWHERE)
    began = time.perf_counter()
    started = await runtime.start(request, {})
    seconds = await wait_ready(http, started.endpoint_url, began)
    await runtime.remove(instance_id, started.state, keep_data=False)
    return seconds


async def fleet_round(http, install, image: str, home: Path, index: int) -> float:
    tenant, port = f"bench{index}", free_port(27000)
    env = {**os.environ, **install.env(), "HOME": str(home), "OPENCLAW_STATE_DIR": str(home / ".openclaw")}
    env.pop("DOCKER_HOST", None)  # fleet only talks to the local socket
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *install.argv("fleet", "create", tenant, "--image", image, "--port", str(port), "--json",
                      "--cpus", f"{PLAN_CPUS:g}", "--memory", f"{PLAN_MEMORY_MB}m"), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"openclaw fleet create failed: {output.decode(errors='replace')[-2000:]}")
    seconds = await wait_ready(http, f"http://127.0.0.1:{port}", began)
    remove = await asyncio.create_subprocess_exec(
        *install.argv("fleet", "rm", tenant, "--force", "--purge-data"), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await remove.wait()
    return seconds


async def idle_memory_mb(http, runtime: DockerRuntime, docker: aiodocker.Docker) -> float:
    instance_id = uuid.uuid4()
    request = LaunchRequest(instance_id, free_port(), "openai", get_provider("openai").default_model,
                            SecretStr(API_KEY), SecretStr(uuid.uuid4().hex), model_url=NOWHERE)
    started = await runtime.start(request, {})
    await wait_ready(http, started.endpoint_url, time.perf_counter())
    await asyncio.sleep(20)  # let it settle to idle
    [stats] = await docker.containers.container(container_name(instance_id)).stats(stream=False)
    usage = stats["memory_stats"]["usage"] - stats["memory_stats"].get("stats", {}).get("cache", 0)
    await runtime.remove(instance_id, started.state, keep_data=False)
    return usage / (1024 * 1024)


@contextmanager
def local_socket_for(docker_url: str | None) -> Iterator[None]:
    """fleet talks to /var/run/docker.sock only: point that at the engine under test meanwhile."""
    default_socket = Path("/var/run/docker.sock")
    if not (docker_url and docker_url.startswith("unix://")) or default_socket.exists():
        yield
        return
    default_socket.symlink_to(docker_url.removeprefix("unix://"))
    try:
        yield
    finally:
        default_socket.unlink()


async def run(pairs: int, out: Path, docker_url: str | None) -> dict:
    runtime_dir = Path(os.environ.get("CLAWFLEET_RUNTIME_DIR", Path.home() / ".cache/clawfleet/runtime"))
    settings_defaults = Settings(_env_file=None)
    install = find_install(runtime_dir, settings_defaults.openclaw_version)
    image = settings_defaults.openclaw_image
    workdir = Path(tempfile.mkdtemp(prefix="clawfleet-bench-docker-"))
    settings = Settings(_env_file=None, data_dir=workdir / "data", database_url=f"sqlite+aiosqlite:///{workdir}/b.db",
                        runtime="docker", docker_url=docker_url, provider_urls={"openai": NOWHERE},
                        max_instances_per_user=1000, start_timeout_s=300, max_concurrent_starts=1,
                        warm_up=False,  # as the bare and fleet starts: --first-answer measures it
                        reconcile_interval_s=10**6)  # after its boot pass: the bare containers have no rows
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    kinds = ["platform", "bare", "cold", "fleet"]
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    async with aiohttp.ClientSession() as http, aiodocker.Docker(url=docker_url) as docker:
        runtime = DockerRuntime(docker, DockerConfig(image=image, version="bench"))
        cold = DockerRuntime(docker, DockerConfig(image=image, version="bench", use_compile_cache=False))
        server = TestServer(await build_app(settings), host="127.0.0.1")
        await server.start_server()
        async with http.post(str(server.make_url("/api/auth/register")),
                             json={"email": "bench@example.com", "password": "benchmark password"}) as response:
            token = (await response.json())["token"]
        for index in range(pairs):
            order = kinds[index % len(kinds):] + kinds[:index % len(kinds)]  # each kind takes every place in turn
            for kind in order:
                if kind == "platform":
                    times[kind].append(await platform_round(http, server, token))
                elif kind in ("bare", "cold"):
                    times[kind].append(await bare_round(http, runtime if kind == "bare" else cold))
                else:
                    with local_socket_for(docker_url):
                        times[kind].append(await fleet_round(http, install, image, workdir / "fleet", index))
            print(f"round {index + 1}/{pairs}: " + ", ".join(f"{k} {times[k][-1]:.2f} s" for k in kinds), flush=True)
        idle_mb = await idle_memory_mb(http, runtime, docker)
        await server.close()

    medians = {kind: statistics.median(values) for kind, values in times.items()}

    def paired(first: str, second: str) -> float:
        """The median of per-round ratios: each round's kinds ran back to back, under the same load."""
        return statistics.median(a / b for a, b in zip(times[first], times[second]))

    result = {
        "image": image, "rounds": pairs, "seconds": times,
        "median_s": medians,
        "platform_over_bare": medians["platform"] / medians["bare"],
        "platform_over_fleet": medians["platform"] / medians["fleet"],
        "bare_over_cold": medians["bare"] / medians["cold"],
        "paired": {"platform_over_bare": paired("platform", "bare"), "platform_over_fleet": paired("platform", "fleet"),
                   "bare_over_cold": paired("bare", "cold")},
        "overhead_ms": (medians["platform"] - medians["bare"]) * 1000,
        "idle_container_memory_mb": idle_mb,
        "instances_in_20_gib": int(BUDGET_GIB * 1024 // idle_mb),
    }
    print_table([
        ("platform: POST /api/instances -> running (median)", f"{medians['platform']:.2f} s"),
        ("bare: same container on the engine -> /readyz (median)", f"{medians['bare']:.2f} s"),
        ("cold: same container without the compile cache -> /readyz (median)", f"{medians['cold']:.2f} s"),
        ("openclaw fleet create -> /readyz (median)", f"{medians['fleet']:.2f} s"),
        ("ratio platform / bare", f"{result['platform_over_bare']:.3f}"),
        ("ratio platform / fleet", f"{result['platform_over_fleet']:.3f}"),
        ("ratio bare / cold (what the compile cache saves)", f"{result['bare_over_cold']:.3f}"),
        ("paired: median of per-round platform / bare", f"{result['paired']['platform_over_bare']:.3f}"),
        ("paired: median of per-round platform / fleet", f"{result['paired']['platform_over_fleet']:.3f}"),
        ("paired: median of per-round bare / cold", f"{result['paired']['bare_over_cold']:.3f}"),
        ("platform overhead over bare", f"{result['overhead_ms']:.0f} ms"),
        ("idle container memory", f"{idle_mb:.0f} MB"),
        (f"instances in {BUDGET_GIB} GiB (extrapolated)", f"{result['instances_in_20_gib']}"),
    ])
    write_json(result, out)
    return result
