"""Crash safety with real OpenClaw gateways and real process kills: gateways SIGKILLed, gateways
that never start, the platform stopped with SIGTERM and killed with SIGKILL mid-deploy.

The platform runs in this process where the test only kills gateways, and as a `clawfleet
serve` child process where the platform itself dies. Gateways point at the loopback fake model
server and have no Telegram channel: no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import delete, select

from clawfleet.settings import Settings
from db.engine import create_engine, create_session_factory
from db.models import Instance
from db.types import utcnow
from provisioner.reconcile.decisions import MAX_FAILURES, Backoff
from provisioner.runtimes import procfs
from provisioner.runtimes.base import LaunchRequest, Started, UnavailableRuntime
from provisioner.runtimes.process import ProcessRuntime
from tests.fakes.model import FakeModel
from tests.support.api_client import Api, migrated, running_api
from tests.support.platform_process import (
    PlatformProcess,
    RemoteApi,
    gateways,
    kill_all,
    listening_ports,
)
from tests.support.waiting import RecordingNotifier, eventually, gateway_ready

OPENAI_KEY = "sk-proj-crashCRASHcrashCRASH0123456789"
BACKOFF = Backoff(1, 4)  # seconds: 1, 2, 4, 4


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        yield fake


@pytest.fixture
def data_dir(tmp_path) -> Path:
    data = tmp_path / "data"
    yield data
    kill_all(data / "instances")  # a failed test must not leave gateways running


@pytest.fixture
def settings(tmp_path, data_dir, openclaw_install, model) -> Settings:
    return Settings(
        _env_file=None, data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}",
        runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
        provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150, max_instances_per_user=2,
        reconcile_interval_s=0.5, lease_ttl_s=3, backoff_base_s=BACKOFF.base_s, backoff_max_s=BACKOFF.max_s,
    )



class BreakableRuntime(ProcessRuntime):
    """The real process runtime, with a switch that writes a config OpenClaw refuses to start
    with, and a record of when gateways were started and stopped."""

    broken = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starts: list[float] = []
        self.stops: list[float] = []

    def write_config(self, config: dict, path: Path) -> None:
        super().write_config(config, path)
        if self.broken:  # OpenClaw: "Gateway start blocked: existing config is missing gateway.mode"
            path.write_text(path.read_text().replace('"gateway"', '"not_the_gateway"', 1))

    async def start(self, request: LaunchRequest, state: dict) -> Started:
        self.starts.append(time.monotonic())
        return await super().start(request, state)

    async def stop(self, instance_id: uuid.UUID, state: dict, timeout: float) -> None:
        await super().stop(instance_id, state, timeout)
        self.stops.append(time.monotonic())


@pytest.fixture
async def api(settings, openclaw_install):
    await migrated(settings)
    runtime, notifier = BreakableRuntime(settings.data_dir, openclaw_install), RecordingNotifier()
    async with running_api(settings, runtime, notifier) as api:
        api.runtime, api.notifier = runtime, notifier
        await api.sign_up()
        yield api



async def _deploy(api: Api) -> str:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    events = await api.progress(created["id"])
    assert events[-1]["done"], events
    return created["id"]


async def _instance(api: Api, instance_id: str) -> dict:
    status, body = await api.call("GET", f"/api/instances/{instance_id}")
    assert status == 200, body
    return body


async def _rows(settings: Settings) -> dict[uuid.UUID, Instance]:
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            return {row.id: row for row in await session.scalars(select(Instance))}
    finally:
        await engine.dispose()


def _log_tail(settings: Settings, instance_id: object) -> str:
    path = settings.data_dir / "instances" / str(instance_id) / "logs" / "gateway.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no gateway log)"


def _sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while procfs.is_alive(pid):
        time.sleep(0.05)


# -- the platform runs on; gateways die ---------------------------------------------------
async def test_a_killed_gateway_is_restarted_with_the_same_data(api: Api, settings: Settings) -> None:
    instance_id = await _deploy(api)
    before = (await _rows(settings))[uuid.UUID(instance_id)]
    marker = settings.data_dir / "instances" / instance_id / "state" / "kept-across-crashes"
    marker.write_text("still here")

    _sigkill(before.runtime_state["pid"])

    async def restarted() -> bool:
        body = await _instance(api, instance_id)
        return body["status"] == "running" and body["restart_count"] == 1

    await eventually(restarted, 120, lambda: _log_tail(settings, instance_id))
    after = (await _rows(settings))[uuid.UUID(instance_id)]
    assert after.runtime_state["pid"] != before.runtime_state["pid"]
    assert after.port == before.port and after.endpoint_url == before.endpoint_url
    assert marker.read_text() == "still here"  # same state directory, nothing reset
    assert gateways(settings.data_dir / "instances") == {after.id: [after.runtime_state["pid"]]}
    assert await gateway_ready(after.endpoint_url)
    body = await _instance(api, instance_id)
    assert body["failure_streak"] == 1 and body["running_since"] and body["status_reason"] is None
    assert api.notifier.sent == []  # a crash that heals is not worth a message


async def test_a_gateway_that_never_starts_backs_off_then_gives_up(api: Api, settings: Settings) -> None:
    instance_id = await _deploy(api)
    pid = (await _rows(settings))[uuid.UUID(instance_id)].runtime_state["pid"]
    api.runtime.broken = True
    api.runtime.starts.clear()
    api.runtime.stops.clear()

    _sigkill(pid)

    async def gave_up() -> bool:
        return (await _instance(api, instance_id))["status"] == "error"

    await eventually(gave_up, 150, lambda: f"starts {api.runtime.starts}, stops {api.runtime.stops}")
    await asyncio.sleep(3)  # six more passes: nothing starts again
    starts, stops = api.runtime.starts, api.runtime.stops
    assert len(starts) == MAX_FAILURES - 1, (starts, stops)  # one crash, then four failed restarts
    # each failure's cleanup (the crash's first) is followed by the next start after its backoff
    waits = [start - stop for stop, start in zip(stops, starts)]
    expected = [BACKOFF.delay(failures) for failures in range(1, MAX_FAILURES)]
    assert expected == [1, 2, 4, 4]
    for wait, want in zip(waits, expected):
        assert want <= wait < want + 3, (waits, expected)

    body = await _instance(api, instance_id)
    assert body["restart_count"] == MAX_FAILURES - 1 and body["failure_streak"] == MAX_FAILURES
    reason = body["status_reason"]
    assert f"failed {MAX_FAILURES} times in a row" in reason
    assert "Gateway start blocked" in reason  # OpenClaw's own words, from the log's last lines
    assert OPENAI_KEY not in reason
    assert gateways(settings.data_dir / "instances") == {}
    user_id = (await _rows(settings))[uuid.UUID(instance_id)].user_id
    assert [who for who, _ in api.notifier.sent] == [user_id]  # told once
    assert "could not be restarted" in api.notifier.sent[0][1]


# -- the platform itself stops or dies ------------------------------------------------------
@pytest.fixture
async def platform(tmp_path, settings: Settings, model):
    env = {
        "CLAWFLEET_DATA_DIR": str(settings.data_dir),
        "CLAWFLEET_DATABASE_URL": settings.database_url,
        "CLAWFLEET_RUNTIME": "process",
        "CLAWFLEET_RUNTIME_DIR": str(settings.runtime_dir),
        "CLAWFLEET_OPENCLAW_VERSION": settings.openclaw_version,
        "CLAWFLEET_PROVIDER_URLS": f"openai={model.url}/v1",
        "CLAWFLEET_START_TIMEOUT_S": "150",
        "CLAWFLEET_MAX_INSTANCES_PER_USER": "2",
        "CLAWFLEET_RECONCILE_INTERVAL_S": "0.5",
        "CLAWFLEET_LEASE_TTL_S": "3",
        "CLAWFLEET_BACKOFF_BASE_S": "1",
        "CLAWFLEET_BACKOFF_MAX_S": "4",
    }
    platform = PlatformProcess(env, tmp_path)
    try:
        yield platform
    finally:
        await platform.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _signed_up(platform: PlatformProcess, http: aiohttp.ClientSession) -> RemoteApi:
    api = RemoteApi(platform.base_url, http)
    await api.sign_up()
    return api


def _spawned(platform: PlatformProcess) -> int:
    """Gateways the current platform run started (not adopted): its log says each."""
    return platform.log_text().count("gateway spawned")


async def test_a_platform_restart_readopts_running_gateways(platform: PlatformProcess, http, settings) -> None:
    await platform.start()
    api = await _signed_up(platform, http)
    first, second = await _deploy(api), await _deploy(api)
    rows = await _rows(settings)
    pids = {row.id: row.runtime_state["pid"] for row in rows.values()}

    assert await platform.terminate() == 0
    assert all(procfs.is_alive(pid) for pid in pids.values())  # gateways outlive the platform

    await platform.start()
    for instance_id in (first, second):
        await eventually(lambda i=instance_id: _healthy(api, i), 60, lambda: platform.log_text()[-3000:])
    await asyncio.sleep(2)  # four more passes
    rows = await _rows(settings)
    assert {row.id: row.runtime_state["pid"] for row in rows.values()} == pids
    assert all(row.status == "running" and row.restart_count == 0 for row in rows.values())
    assert gateways(settings.data_dir / "instances") == {i: [pid] for i, pid in pids.items()}
    assert _spawned(platform) == 0, platform.log_text()[-3000:]  # nothing started twice
    assert listening_ports(settings.data_dir / "instances") == {row.port for row in rows.values()}


async def _healthy(api: Api, instance_id: str) -> bool:
    status, health = await api.call("GET", f"/api/instances/{instance_id}/health")
    return status == 200 and health["live"] and health["ready"]


@pytest.mark.parametrize("point", ["before_start", "after_spawn", "after_ready"])
async def test_a_platform_killed_mid_deploy_ends_with_one_running_gateway(
        platform: PlatformProcess, http, settings: Settings, point: str) -> None:
    await platform.start(CLAWFLEET_CRASH_AT=point)
    api = await _signed_up(platform, http)
    try:
        await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    except aiohttp.ClientError:
        pass  # it may die before it answers
    assert await platform.wait_exit(150) == -signal.SIGKILL, platform.log_text()[-3000:]
    [instance_id] = (await _rows(settings)).keys()
    started_before = gateways(settings.data_dir / "instances").get(instance_id, [])
    assert len(started_before) == (0 if point == "before_start" else 1)

    await platform.start()
    await eventually(lambda: _healthy(api, str(instance_id)), 150,
                     lambda: f"{platform.log_text()[-3000:]}\n{_log_tail(settings, instance_id)}")
    await asyncio.sleep(2)  # four more passes: nothing else happens
    row = (await _rows(settings))[instance_id]
    assert row.status == "running" and row.lease_holder is None
    assert gateways(settings.data_dir / "instances") == {instance_id: [row.runtime_state["pid"]]}
    if started_before:  # the gateway the killed platform started is the one adopted
        assert started_before == [row.runtime_state["pid"]] and _spawned(platform) == 0
    else:
        assert _spawned(platform) == 1
    assert listening_ports(settings.data_dir / "instances") == {row.port}  # no orphan port
    assert row.restart_count == 0  # finishing a deploy is not a restart

    assert (await api.call("DELETE", f"/api/instances/{instance_id}?purge=true"))[0] == 202
    deleted = await api.progress(str(instance_id))
    assert deleted[-1]["done"], f"{deleted}\n{platform.log_text()[-3000:]}"
    assert gateways(settings.data_dir / "instances") == {} and listening_ports(settings.data_dir / "instances") == set()


async def test_a_platform_killed_mid_deploy_leaves_a_stream_that_ends_interrupted(
        platform: PlatformProcess, http, settings: Settings) -> None:
    """Followed from a second web app on the same database (no runtime: it only reads), the
    stream ends with a failed event once the dead platform's lease lapses, not never."""
    await platform.start(CLAWFLEET_CRASH_AT="after_spawn")
    api = await _signed_up(platform, http)
    async with running_api(settings, UnavailableRuntime("this app only reads")) as reader:
        reader.token = api.token
        try:
            await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
        except aiohttp.ClientError:
            pass  # it may die before it answers
        await eventually(lambda: _rows(settings), 30)
        [instance_id] = (await _rows(settings)).keys()
        following = asyncio.create_task(reader.progress(str(instance_id), timeout=60))
        assert await platform.wait_exit(150) == -signal.SIGKILL, platform.log_text()[-3000:]
        killed = time.monotonic()
        lease_left = ((await _rows(settings))[instance_id].lease_expires_at - utcnow()).total_seconds()
        events = await following
        ended = time.monotonic() - killed

    assert [e["step"] for e in events] == ["config", "starting", "interrupted"], events
    assert events[-1]["failed"] and "reconciler will pick it up" in events[-1]["reason"]
    assert lease_left - 0.2 < ended < lease_left + 1.5 and ended < settings.lease_ttl_s + 1.5, (ended, lease_left)
    print(f"interrupted stream ended {ended:.2f} s after the kill (lease had {lease_left:.2f} s left)")

    await platform.start()  # the reconciler's recovery replaces the interrupted action's events
    await eventually(lambda: _healthy(api, str(instance_id)), 150,
                     lambda: f"{platform.log_text()[-3000:]}\n{_log_tail(settings, instance_id)}")
    recovered = await api.progress(str(instance_id))
    assert recovered[-1]["done"] and "interrupted" not in [e["step"] for e in recovered]
    assert (await api.call("DELETE", f"/api/instances/{instance_id}?purge=true"))[0] == 202
    assert (await api.progress(str(instance_id)))[-1]["done"]


async def test_while_the_platform_was_down_orphans_are_stopped_and_vanished_gateways_restarted(
        platform: PlatformProcess, http, settings: Settings) -> None:
    await platform.start()
    api = await _signed_up(platform, http)
    orphaned, vanished = uuid.UUID(await _deploy(api)), uuid.UUID(await _deploy(api))
    rows = await _rows(settings)
    assert await platform.terminate() == 0

    engine = create_engine(settings.database_url)  # while it is down: one row goes, one gateway dies
    async with create_session_factory(engine)() as session:
        await session.execute(delete(Instance).where(Instance.id == orphaned))
        await session.commit()
    await engine.dispose()
    _sigkill(rows[vanished].runtime_state["pid"])
    orphan_pid = rows[orphaned].runtime_state["pid"]
    assert procfs.is_alive(orphan_pid)

    await platform.start()
    await eventually(lambda: not procfs.is_alive(orphan_pid), 60, lambda: platform.log_text()[-3000:])
    await eventually(lambda: _healthy(api, str(vanished)), 150,
                     lambda: f"{platform.log_text()[-3000:]}\n{_log_tail(settings, vanished)}")
    row = (await _rows(settings))[vanished]
    assert row.status == "running" and row.restart_count == 1
    assert row.runtime_state["pid"] != rows[vanished].runtime_state["pid"]
    assert gateways(settings.data_dir / "instances") == {vanished: [row.runtime_state["pid"]]}
    assert not (settings.data_dir / "instances" / str(orphaned)).exists()
    kept = [path.name for path in (settings.data_dir / "deleted").iterdir()]
    assert [name for name in kept if name.startswith(str(orphaned))], kept  # its data is kept
