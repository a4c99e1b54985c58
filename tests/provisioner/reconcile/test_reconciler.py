"""The reconciler's loop against the in-memory runtime (real HTTP probes on loopback), through
the REST API, on SQLite and PostgreSQL. Real gateways: tests/test_e2e_crash.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from clawfleet.settings import Settings
from db.leases import acquire_instance_lease
from db.models import Instance, Lease
from db.types import utcnow
from provisioner.reconcile.decisions import MAX_FAILURES, Act
from provisioner.reconcile.reconciler import Reconciler, ReconcilerConfig
from provisioner.runtimes.base import LaunchRequest
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import RecordingNotifier, eventually

OPENAI_KEY = "sk-proj-reconcileRECONCILE0123456789"
BACKOFF_BASE, BACKOFF_MAX = 0.2, 0.8



@pytest.fixture
def settings(database_url, tmp_path, telegram) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, database_url=database_url, telegram_api_url=telegram.api_url,
                    start_timeout_s=5, reconcile_interval_s=0.2, lease_ttl_s=3,
                    backoff_base_s=BACKOFF_BASE, backoff_max_s=BACKOFF_MAX)


@pytest.fixture
async def api(settings, sessions):
    runtime, notifier = MemoryRuntime(), RecordingNotifier()
    async with running_api(settings, runtime, notifier) as api:
        api.runtime, api.notifier = runtime, notifier
        await api.sign_up()
        yield api
    await runtime.close()



async def _row(sessions, instance_id) -> Instance | None:
    async with sessions() as session:
        return await session.get(Instance, uuid.UUID(str(instance_id)))


async def _deployed(api: Api) -> dict:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    assert (await api.progress(created["id"]))[-1]["done"]
    return created


async def _status(api: Api, instance_id: str) -> dict:
    return (await api.call("GET", f"/api/instances/{instance_id}"))[1]


async def test_a_crashed_gateway_is_restarted_and_counted(api: Api) -> None:
    created = await _deployed(api)
    instance_id = uuid.UUID(created["id"])
    await api.runtime.crash(instance_id)
    await eventually(lambda: len(api.runtime.starts) == 2)
    body = await api.wait_status(created["id"], "running", timeout=10)
    assert body["restart_count"] == 1 and body["failure_streak"] == 1 and body["running_since"]
    assert instance_id in api.runtime.gateways
    assert api.notifier.sent == []  # a crash that heals is not worth a message


async def test_a_gateway_that_keeps_failing_backs_off_then_gives_up(api: Api, sessions) -> None:
    created = await _deployed(api)
    api.runtime.exits_on_start = True
    crashed_at = time.monotonic()
    await api.runtime.crash(uuid.UUID(created["id"]))
    body = await api.wait_status(created["id"], "error", timeout=20)

    restarts = api.runtime.start_times[1:]
    assert len(restarts) == MAX_FAILURES - 1  # one crash, four restarts that failed
    waits = [b - a for a, b in zip([crashed_at, *restarts], restarts)]
    expected = [min(BACKOFF_MAX, BACKOFF_BASE * 2**n) for n in range(len(waits))]
    assert all(wait >= want for wait, want in zip(waits, expected)), (waits, expected)
    assert waits[-1] > waits[0]
    assert "failed 5 times in a row" in body["status_reason"]
    assert "config invalid" in body["status_reason"]  # the log's last lines, for the owner
    assert body["restart_count"] == MAX_FAILURES - 1

    user_id = (await _row(sessions, created["id"])).user_id
    assert [who for who, _ in api.notifier.sent] == [user_id]  # told once
    await asyncio.sleep(1)  # more passes: nothing starts again, nobody is told twice
    assert len(api.runtime.start_times) == MAX_FAILURES and len(api.notifier.sent) == 1

    api.runtime.exits_on_start = False  # the owner fixed it and starts it again
    assert (await api.call("POST", f"/api/instances/{created['id']}/start"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    body = await _status(api, created["id"])
    assert body["status"] == "running" and body["failure_streak"] == 0 and body["status_reason"] is None


async def test_an_orphan_gateway_is_stopped_and_its_data_kept(api: Api) -> None:
    orphan = uuid.uuid4()
    await api.runtime.start(LaunchRequest(orphan, 0, "openai", "gpt-5.2", OPENAI_KEY, "token"), {})
    await eventually(lambda: orphan not in api.runtime.gateways)
    assert api.runtime.removed == {orphan: True}


async def test_a_gateway_running_for_a_stopped_instance_is_halted_and_it_stays_stopped(api: Api, sessions) -> None:
    created = await _deployed(api)
    assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    row = await _row(sessions, created["id"])
    request = replace(api.runtime.starts[0])
    await api.runtime.start(request, row.runtime_state)  # something started it behind our back
    await eventually(lambda: row.id not in api.runtime.gateways)
    assert (await _status(api, created["id"]))["status"] == "stopped"


async def test_a_delete_cut_short_is_finished(api: Api, sessions) -> None:
    created = await _deployed(api)
    async with sessions() as session:
        row = await session.get(Instance, uuid.UUID(created["id"]))
        row.status = "deleting"  # as a platform killed in the middle of a delete leaves it
        await session.commit()
    await eventually(lambda: _gone(sessions, created["id"]))
    assert api.runtime.removed == {uuid.UUID(created["id"]): True}


async def _gone(sessions, instance_id) -> bool:
    return await _row(sessions, instance_id) is None


async def test_an_interrupted_deploy_is_driven_to_running(api: Api, sessions) -> None:
    created = await _deployed(api)
    instance_id = uuid.UUID(created["id"])
    async with sessions() as session:  # killed after the gateway was ready, before the row said so
        row = await session.get(Instance, instance_id)
        row.status, row.lease_holder, row.lease_expires_at = "provisioning", "dead-process/1", utcnow() - timedelta(seconds=1)
        await session.commit()
    await api.wait_status(created["id"], "running", timeout=10)
    assert len(api.runtime.starts) == 1  # adopted, not started twice


async def test_an_instance_under_a_live_lease_is_left_alone(api: Api, sessions) -> None:
    created = await _deployed(api)
    instance_id = uuid.UUID(created["id"])
    async with sessions() as session:
        assert await acquire_instance_lease(session, instance_id, "someone-else/1", timedelta(seconds=30))
    await api.runtime.crash(instance_id)
    await asyncio.sleep(1)  # five passes
    assert len(api.runtime.starts) == 1 and (await _status(api, created["id"]))["status"] == "running"


async def test_not_ready_for_long_tells_the_owner_once_and_does_not_restart(api: Api, sessions) -> None:
    reconciler = api.platform.reconciler
    reconciler.config = replace(reconciler.config, not_ready_grace_s=0.5)
    created = await _deployed(api)
    instance_id = uuid.UUID(created["id"])
    api.runtime.gateways[instance_id].ready = False  # e.g. another client polls the same bot
    await eventually(lambda: api.notifier.sent, timeout=10)
    body = await _status(api, created["id"])
    assert body["status"] == "running" and "failing: telegram" in body["status_reason"]
    assert "failing: telegram" in api.notifier.sent[0][1]
    await asyncio.sleep(1)
    assert len(api.notifier.sent) == 1 and len(api.runtime.starts) == 1

    api.runtime.gateways[instance_id].ready = True
    await eventually(lambda: _reason_cleared(sessions, created["id"]))


async def _reason_cleared(sessions, instance_id) -> bool:
    row = await _row(sessions, instance_id)
    return row.status_reason is None and row.not_ready_since is None


async def test_one_reconciler_at_a_time(api: Api, sessions) -> None:
    """A second platform process against the same database does not reconcile while the first
    holds the singleton lease; it takes over once the first stops."""
    second = Reconciler(sessions, api.platform.manager, ReconcilerConfig(interval_s=0.2, lease_ttl_s=1.5),
                        api.platform.manager.http)
    second.holder = "another-process/reconciler"
    passes = 0

    async def counted() -> dict:
        nonlocal passes
        passes += 1
        return {}

    second.reconcile_once = counted
    running = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(1.5)
        assert passes == 0  # the first process holds the lease
        first = next(task for task in asyncio.all_tasks()
                     if task.get_name() == f"reconciler:{api.platform.reconciler.holder}")
        first.cancel()  # the first process stops: it lets go of the lease
        await asyncio.gather(first, return_exceptions=True)
        await eventually(lambda: passes > 0, timeout=5)
        async with sessions() as session:
            assert await session.scalar(select(Lease.holder).where(Lease.name == "reconciler")) == second.holder
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_pass_reports_what_it_decided(api: Api) -> None:
    created = await _deployed(api)
    decided = await api.platform.reconciler.reconcile_once()
    assert decided == {uuid.UUID(created["id"]): Act.PROBE}
