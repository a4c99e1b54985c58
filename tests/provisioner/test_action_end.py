"""An action's end reaches its stream, and frees its instance, even when the database fails the
release of its lease. Through the REST API, in-memory gateways; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from db.models import Instance
from tests.support.api_client import running_api
from tests.support.db_faults import failing_statements, releases_instance_lease
from tests.support.memory_runtime import MemoryRuntime

BODY = {"model_provider": "openai", "api_key": "sk-proj-releaseRELEASE0123456789"}
LEASE_TTL_S = 60  # far longer than the test: anything that waits for the lease to lapse times out
STREAM_GUARD_S = 10  # a stream that does not end by then waits for the lease to lapse


@pytest.fixture
def settings(settings_for):
    return settings_for(lease_ttl_s=LEASE_TTL_S)


async def test_a_failed_release_is_retried_and_the_instance_is_free_at_once(settings, sessions) -> None:
    async with running_api(settings, MemoryRuntime()) as api:
        await api.sign_up()
        with failing_statements(api.platform.engine, releases_instance_lease, times=2) as faults:
            status, created = await api.call("POST", "/api/instances", BODY)
            assert status == 202, created
            events = await api.progress(created["id"], timeout=STREAM_GUARD_S)
            await api.platform.manager.wait_idle()
        async with sessions() as session:
            row = await session.get(Instance, uuid.UUID(created["id"]))
        status, restarted = await api.call("POST", f"/api/instances/{created['id']}/restart")
        assert (await api.progress(created["id"], timeout=STREAM_GUARD_S))[-1]["done"]
    assert faults.failed == 2  # the release with the final event, then the first retry
    assert events[-1]["step"] == "ready" and events[-1]["done"], events  # the real outcome, not "interrupted"
    assert (row.lease_holder, row.action) == (None, None)
    assert status == 202, restarted  # not 409 until the lease lapses


async def test_the_final_event_is_sent_however_long_the_release_fails(settings, sessions) -> None:
    async with running_api(settings, MemoryRuntime()) as api:
        await api.sign_up()
        with failing_statements(api.platform.engine, releases_instance_lease, times=1000) as faults:
            _, created = await api.call("POST", "/api/instances", BODY)
            events = await api.progress(created["id"], timeout=STREAM_GUARD_S)
            await api.platform.manager.wait_idle()
        async with sessions() as session:
            row = await session.get(Instance, uuid.UUID(created["id"]))
    assert events[-1]["step"] == "ready" and events[-1]["done"], events
    assert faults.failed == 5  # the release with the final event, then four of its own
    assert row.lease_holder is not None and row.status == "running"
