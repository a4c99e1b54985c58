"""Actions say what they did, stop and delete are never refused by a start, and the platform's
own background work yields to its owners. Through the REST API, with in-memory gateways that
answer real readiness probes on loopback; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from db.models import Instance
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

BODY = {"model_provider": "openai", "api_key": "sk-proj-canaryCANARYcanary0123456789"}


@pytest.fixture
def settings_for(settings_for):
    """Short leases: a cancel request is seen within half a second."""
    return lambda **overrides: settings_for(**{"lease_ttl_s": 3, **overrides})


async def _created(api: Api) -> dict:
    await api.sign_up()
    status, created = await api.call("POST", "/api/instances", BODY)
    assert status == 202, created
    return created


async def _row(api: Api, instance_id: str) -> Instance | None:
    async with api.platform.manager.sessions() as session:
        return await session.get(Instance, uuid.UUID(instance_id))


async def test_a_restart_answers_with_the_state_it_set(settings_for, sessions) -> None:
    async with running_api(settings_for(), MemoryRuntime(ready_after=1.0)) as api:
        created = await _created(api)
        assert created["status"] == "provisioning" and created["action"] == "deploy"
        await api.progress(created["id"])
        status, restarted = await api.call("POST", f"/api/instances/{created['id']}/restart")
        assert status == 202 and (restarted["status"], restarted["action"]) == ("provisioning", "restart")
        _, shown = await api.call("GET", f"/api/instances/{created['id']}")
        assert shown["status"] == "provisioning"  # never "running" while it restarts
        events = await api.progress(created["id"])
        _, after = await api.call("GET", f"/api/instances/{created['id']}")
    assert events[-1]["done"] and (after["status"], after["action"]) == ("running", None)


async def test_a_second_restart_is_refused_naming_what_runs(settings_for, sessions) -> None:
    async with running_api(settings_for(), MemoryRuntime(ready_after=1.5)) as api:
        created = await _created(api)
        await api.progress(created["id"])
        assert (await api.call("POST", f"/api/instances/{created['id']}/restart"))[0] == 202
        status, answer = await api.call("POST", f"/api/instances/{created['id']}/restart")
        assert status == 409 and "it is restarting" in answer["error"]["message"]
        assert (await api.progress(created["id"]))[-1]["done"]


async def test_stop_during_a_start_cuts_it_short_then_stops(settings_for, sessions) -> None:
    runtime = MemoryRuntime(ready_after=30)
    async with running_api(settings_for(start_timeout_s=60), runtime) as api:
        created = await _created(api)
        deploy_events = asyncio.create_task(api.progress(created["id"]))
        await asyncio.sleep(0.5)
        status, stopping = await api.call("POST", f"/api/instances/{created['id']}/stop")
        assert status == 202, stopping
        assert stopping["action"] == "stop"
        cut = (await deploy_events)[-1]
        stop_events = await api.progress(created["id"])
        _, shown = await api.call("GET", f"/api/instances/{created['id']}")
    assert cut["failed"] and cut["step"] == "cancelled" and "asked to stop" in cut["reason"]
    assert stop_events[-1]["done"] and shown["status"] == "stopped"
    assert runtime.gateways == {}


async def test_delete_during_a_hung_start_is_never_refused(settings_for, sessions) -> None:
    runtime = MemoryRuntime(hangs_on_start=True)
    async with running_api(settings_for(start_timeout_s=60), runtime) as api:
        created = await _created(api)
        await asyncio.sleep(0.5)
        status, deleting = await api.call("DELETE", f"/api/instances/{created['id']}")
        assert status == 202 and (deleting["status"], deleting["action"]) == ("deleting", "delete")
        again, _ = await api.call("DELETE", f"/api/instances/{created['id']}")  # asking twice is fine
        events = await api.progress(created["id"])
        assert again in (202, 404)  # the same delete under way, or already done
        assert events[-1]["done"] and events[-1]["step"] == "deleted", events
        assert await _row(api, created["id"]) is None


async def test_a_hung_start_fails_with_a_reason_and_frees_the_instance(settings_for, sessions) -> None:
    async with running_api(settings_for(start_timeout_s=1.5), MemoryRuntime(hangs_on_start=True)) as api:
        created = await _created(api)
        events = await api.progress(created["id"], timeout=20)
        _, shown = await api.call("GET", f"/api/instances/{created['id']}")
        row = await _row(api, created["id"])
    assert events[-1]["failed"] and "memory runtime did not start the gateway within 2 seconds" in events[-1]["reason"]
    assert shown["status"] == "error" and "did not start" in shown["status_reason"] and shown["action"] is None
    assert row.lease_holder is None


async def test_the_platforms_own_work_yields_to_the_owner(settings_for, sessions) -> None:
    runtime = MemoryRuntime(ready_after=30)
    async with running_api(settings_for(start_timeout_s=60), runtime) as api:
        created = await _created(api)
        instance_id = uuid.UUID(created["id"])
        manager = api.platform.manager
        await (await manager.stop(instance_id)).follow().__anext__()  # cut the deploy short, as an owner would
        await manager.wait_idle()
        await manager.recover(instance_id)  # the reconciler restarting it: slow to get ready
        await asyncio.sleep(0.3)
        status, answer = await api.call("POST", f"/api/instances/{created['id']}/stop")
        assert status == 202, answer
        assert (await api.progress(created["id"]))[-1]["done"]
        assert (await _row(api, created["id"])).status == "stopped"


async def test_a_delete_in_another_process_cancels_a_start_there(settings_for, sessions) -> None:
    """Two platform processes on one database: the one holding a hung start sees the cancel
    request written on the row at its next lease renewal."""
    settings = settings_for(start_timeout_s=60, lease_ttl_s=1.5)
    async with running_api(settings, MemoryRuntime(hangs_on_start=True)) as first, \
            running_api(settings, MemoryRuntime()) as second:
        created = await _created(first)
        second.token = first.token
        await asyncio.sleep(0.3)
        status, deleting = await second.call("DELETE", f"/api/instances/{created['id']}")
        assert status == 202 and deleting["status"] == "deleting", deleting
        async with asyncio.timeout(10):
            while await _row(second, created["id"]) is not None:
                await asyncio.sleep(0.1)


async def test_the_gateway_gets_the_memory_its_owner_is_entitled_to(settings_for, sessions) -> None:
    runtime = MemoryRuntime()
    async with running_api(settings_for(instance_memory_mb=777, instance_cpus=0.5), runtime) as api:
        created = await _created(api)
        await api.progress(created["id"])
        row = await _row(api, created["id"])
        _, health = await api.call("GET", f"/api/instances/{created['id']}/health")
    assert (runtime.starts[-1].memory_mb, runtime.starts[-1].cpus) == (777, 0.5)
    assert (row.memory_mb, row.cpus) == (777, 0.5)  # what the memory budget counts
    assert health["memory"] == {"limit_mb": 777, "used_mb": 321}  # the limit, and the use measured beside it


async def test_the_memory_budget_counts_the_limits_given(settings_for, sessions) -> None:
    settings = settings_for(instance_memory_mb=1000, memory_budget_mb=2500, max_instances_per_user=5)
    async with running_api(settings, MemoryRuntime()) as api:
        await _created(api)
        assert (await api.call("POST", "/api/instances", BODY))[0] == 202
        status, answer = await api.call("POST", "/api/instances", BODY)
    assert status == 503 and "2000 MB of its memory budget (2500 MB)" in answer["error"]["message"]


async def test_a_start_beyond_the_memory_budget_is_refused_and_frees_the_instance(settings_for, sessions) -> None:
    settings = settings_for(instance_memory_mb=1000, memory_budget_mb=1500)
    async with running_api(settings, MemoryRuntime()) as api:
        resting = await _created(api)
        await api.progress(resting["id"])
        assert (await api.call("POST", f"/api/instances/{resting['id']}/stop"))[0] == 202
        await api.progress(resting["id"])
        other = Api(api.server, api.http)
        await _created(other)  # takes the room the stopped one left
        for verb in ("start", "start", "restart"):  # refused each time, never "busy"
            status, answer = await api.call("POST", f"/api/instances/{resting['id']}/{verb}")
            assert status == 503 and answer["error"]["code"] == "capacity_exceeded", (verb, answer)
            assert "1000 MB of its memory budget (1500 MB)" in answer["error"]["message"]
        _, shown = await api.call("GET", f"/api/instances/{resting['id']}")
    assert (shown["status"], shown["action"]) == ("stopped", None)


async def test_owners_racing_to_start_into_the_last_memory_slot_get_it_once(settings_for, sessions) -> None:
    settings = settings_for(instance_memory_mb=1000, memory_budget_mb=1500)
    async with running_api(settings, MemoryRuntime()) as api:
        owners, instance_ids = [], []
        for _ in range(3):
            owner = Api(api.server, api.http)
            created = await _created(owner)
            await owner.progress(created["id"])
            assert (await owner.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
            await owner.progress(created["id"])
            owners.append(owner)
            instance_ids.append(created["id"])
        answers = await asyncio.gather(*(owner.call("POST", f"/api/instances/{instance_id}/start")
                                         for owner, instance_id in zip(owners, instance_ids)))
        await api.platform.manager.wait_idle()
    assert sorted(status for status, _ in answers) == [202, 503, 503], answers
