"""The memory watch over a real OpenClaw gateway (process runtime, fake model on loopback): a
gateway above its threshold is left alone while a reply is on its way, both by the model
gateway's record of calls and by the gateway itself (`gateway.suspend.prepare` says it is busy),
then restarted at the quiet moment after, counted, audited and shown.

The threshold is set below what any gateway holds (1% of its limit), so the real gateway is
"too big" from its first reading; the rounds are driven by hand, so each is seen deciding.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from db.models import AuditLog, Instance
from provisioner.gateway_calls import gateway_call
from provisioner.memory_watch import MemoryWatch, MemoryWatchConfig, Verdict
from provisioner.resources.history import ResourceHistory
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 - fixtures
from tests.support.waiting import eventually

OPENAI_KEY = "sk-proj-memoryMEMORY0123456789abcdef"


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes):  # noqa: F811 - the fixture above
    telegram, model = fakes
    return process_settings(tmp_path, openclaw_install, telegram, model, memory_restart_percent=0,  # rounds by hand
                            resource_sample_interval_s=5)


async def _row(api, instance_id) -> Instance:
    async with api.platform.sessions() as session:
        return await session.get(Instance, instance_id)


async def _sampled(platform, row: Instance) -> bool:
    latest = await ResourceHistory(platform.sessions).latest([row.id])
    return row.id in latest and latest[row.id].taken_at >= row.running_since


async def _idle(api, instance_id) -> bool:
    row = await _row(api, instance_id)
    return row.status == "running" and api.platform.manager.action_in_progress(instance_id) is None


async def test_a_big_gateway_is_restarted_at_the_quiet_moment_after_a_reply_never_during_it(api, fakes) -> None:
    _, model = fakes
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    events = await api.progress(created["id"])
    assert events[-1]["done"], events
    row = await _row(api, uuid.UUID(created["id"]))
    first_pid = row.runtime_state["pid"]
    platform = api.platform
    manager, activity = platform.manager, platform.model_gateway.activity

    def watch(quiet_s: float) -> MemoryWatch:
        return MemoryWatch(platform.sessions, manager, MemoryWatchConfig(threshold_percent=1, sustained_s=0.5,
                                                                         quiet_s=quiet_s), activity.idle_for_s)

    patient = watch(quiet_s=2)
    await eventually(lambda: _sampled(platform, row), 30)  # the resource sampler's first reading
    assert await patient.check_once() == {row.id: Verdict.HIGH}  # a first high reading is not a leak

    # A reply on its way: the owner's turn waits on the model
    model.delay_s = 8
    asked = await gateway_call(manager.runtime, row.id, row.runtime_state, "sessions.create",
                               {"agentId": "main", "displayName": "Chat", "message": "Tell me about tides."})
    assert asked.get("runStarted"), asked
    await model.wait_for_request(lambda request: "tides" in request.last_user_text, timeout=60)
    await asyncio.sleep(0.6)
    assert await patient.check_once() == {row.id: Verdict.NOT_QUIET}  # the model gateway sees the call

    # A watch that does not wait for quiet still cannot cut the reply short: the gateway says busy
    hasty = watch(quiet_s=0)
    assert await hasty.check_once() == {row.id: Verdict.HIGH}
    await asyncio.sleep(0.6)
    assert await hasty.check_once() == {row.id: Verdict.RESTARTING}  # it asks the gateway
    await eventually(lambda: _idle(api, row.id), 60)
    said = (await api.progress(created["id"]))[-1]
    print("the gateway, asked mid-reply:", said["message"])
    assert said["done"] and said["message"].startswith("Not restarted now: the gateway is busy"), said
    row = await _row(api, row.id)
    assert row.runtime_state["pid"] == first_pid and row.memory_restarts == 0

    # The reply ends; the quiet moment comes; the restart happens
    model.delay_s = 0
    await eventually(lambda: (activity.idle_for_s(row.id) or 0) >= 2, 30)
    await eventually(lambda: _sampled(platform, row), 30)  # of the gateway since its last start
    assert await patient.check_once() == {row.id: Verdict.RESTARTING}
    events = await api.progress(created["id"], timeout=200)
    assert events[-1]["done"], events
    row = await _row(api, row.id)
    assert row.runtime_state["pid"] != first_pid and row.memory_restarts == 1
    status, shown = await api.call("GET", f"/api/instances/{created['id']}")
    assert status == 200 and shown["memory_restarts"] == 1 and shown["status"] == "running"
    async with platform.sessions() as session:
        audited = list(await session.scalars(select(AuditLog.action).where(AuditLog.instance_id == row.id)))
    assert "instance.memory_restart" in audited
