"""Progress streams any platform process serves: two web apps on one database (each on a real
server on loopback), the in-memory runtime, SQLite and PostgreSQL. A platform really killed
mid-deploy: tests/test_e2e_crash.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from clawfleet.settings import Settings
from db.errors import Conflict
from db.leases import InstanceLease
from db.models import Instance, ProgressRecord, User
from db.types import utcnow
from provisioner.progress import INTERRUPTED, ProgressHub
from provisioner.runtimes.base import UnavailableRuntime
from tests.support.api_client import Api, running_api
from tests.support.builders import new_instance
from tests.support.memory_runtime import MemoryRuntime

OPENAI_KEY = "sk-proj-progressPROGRESS0123456789"
BODY = {"model_provider": "openai", "api_key": OPENAI_KEY}
LEASE_TTL_S = 1.5


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, database_url=database_url,
                    telegram_api_url="http://127.0.0.1:9", start_timeout_s=5, lease_ttl_s=LEASE_TTL_S)


@pytest.fixture
async def apps(settings, sessions):
    """The app that deploys, and a second one that only reads: the same user signed in to both."""
    runtime = MemoryRuntime(ready_after=1.0)
    async with running_api(settings, runtime) as first, running_api(settings, MemoryRuntime()) as second:
        await first.sign_up()
        second.token = first.token
        yield first, second
    await runtime.close()


async def _rows(sessions, instance_id: str) -> list[ProgressRecord]:
    async with sessions() as session:
        return list(await session.scalars(
            select(ProgressRecord).where(ProgressRecord.instance_id == uuid.UUID(instance_id))
            .order_by(ProgressRecord.action_seq, ProgressRecord.seq)
        ))


async def _timed(stream) -> tuple[list[dict], float]:
    events = await stream
    return events, time.monotonic()


async def test_a_second_app_follows_and_replays_a_deploy_the_first_runs(apps) -> None:
    first, second = apps
    _, created = await first.call("POST", "/api/instances", BODY)
    remote = asyncio.create_task(_timed(second.progress(created["id"])))  # live, by polling the table
    local, local_end = await _timed(first.progress(created["id"]))
    followed, remote_end = await remote

    assert local[-1]["done"] and {"config", "starting", "waiting", "ready"} <= {e["step"] for e in local}
    assert followed == local
    assert remote_end - local_end < 1.5  # about one poll behind
    assert await second.progress(created["id"]) == local  # replayed once it is over


async def test_only_the_latest_actions_events_are_kept(apps, sessions) -> None:
    first, second = apps
    _, created = await first.call("POST", "/api/instances", BODY)
    deployed = await first.progress(created["id"])
    assert (await first.call("POST", f"/api/instances/{created['id']}/restart"))[0] == 202
    restarted = await second.progress(created["id"])

    assert deployed[-1]["step"] == restarted[-1]["step"] == "ready" and restarted[0]["step"] == "stopping"
    rows = await _rows(sessions, created["id"])
    assert {row.action_seq for row in rows} == {2}
    assert [row.step for row in rows] == ["begin"] + [event["step"] for event in restarted]


async def test_a_deletes_events_stay_readable_to_the_owner_only(apps) -> None:
    first, second = apps
    _, created = await first.call("POST", "/api/instances", BODY)
    await first.progress(created["id"])
    assert (await first.call("DELETE", f"/api/instances/{created['id']}"))[0] == 202
    assert (await second.progress(created["id"]))[-1]["step"] == "deleted"
    assert (await second.call("GET", f"/api/instances/{created['id']}"))[0] == 404

    stranger = Api(second.server, second.http)
    await stranger.sign_up()
    assert (await stranger.call("GET", f"/api/instances/{created['id']}/progress"))[0] == 404


async def test_a_reconnect_resumes_after_its_last_event_id(apps) -> None:
    first, second = apps
    _, created = await first.call("POST", "/api/instances", BODY)
    stream = await first.progress_with_ids(created["id"])
    ids = [event_id for event_id, _ in stream]
    assert ids == [f"1:{event['seq']}" for _, event in stream]

    assert await second.progress_with_ids(created["id"], last_event_id=ids[1]) == stream[2:]
    assert await second.progress_with_ids(created["id"], last_event_id="7:2") == stream  # another action's
    assert await second.progress_with_ids(created["id"], last_event_id=ids[-1]) == []


# -- actions whose process died ------------------------------------------------------------
async def _dead_holders_action(api: Api, sessions, lease_s: float) -> Instance:
    """An instance whose deploy a process began and then died in: events up to "starting", a
    lease nobody renews. Its runtime is nobody's here, so no reconciler takes it over."""
    async with sessions() as session:
        user = await session.scalar(select(User).order_by(User.created_at.desc()).limit(1))
        instance = new_instance(api.platform.keyring, user, runtime="elsewhere", status="provisioning",
                                lease_holder="manager-killed/0", lease_expires_at=utcnow() + timedelta(seconds=lease_s))
        session.add(instance)
        await session.commit()
    died_in = ProgressHub(api.platform.manager.progress.sessions)  # another process's: not the app's own
    log = await died_in.begin(instance.id, user.id)
    await log.emit("config", "Preparing your assistant's configuration.")
    await log.emit("starting", "Starting the OpenClaw gateway.")
    return instance


async def test_a_dead_holders_stream_ends_interrupted_once_its_lease_lapses(apps, sessions) -> None:
    first, second = apps
    instance = await _dead_holders_action(first, sessions, lease_s=LEASE_TTL_S)
    began = time.monotonic()
    events = await second.progress(str(instance.id), timeout=10)
    waited = time.monotonic() - began

    assert [e["step"] for e in events] == ["config", "starting", "interrupted"]
    assert events[-1] == {"seq": 3, "step": "interrupted", "message": INTERRUPTED, "reason": INTERRUPTED,
                          "elapsed_ms": events[1]["elapsed_ms"], "done": False, "failed": True}
    assert LEASE_TTL_S - 0.3 < waited < LEASE_TTL_S + 1.0
    assert await first.progress(str(instance.id)) == events  # every reader derives the same end
    assert "interrupted" not in [row.step for row in await _rows(sessions, str(instance.id))]  # not stored


async def test_a_stream_superseded_by_a_newer_action_ends_interrupted(apps, sessions) -> None:
    first, second = apps
    instance = await _dead_holders_action(first, sessions, lease_s=60)
    events, caught_up = [], asyncio.Event()

    async def follow() -> None:
        async for _, event in second.progress_stream(str(instance.id)):
            events.append(event)
            if event["step"] == "starting":
                caught_up.set()  # the stream follows this action now, whatever comes next

    following = asyncio.create_task(follow())
    async with asyncio.timeout(10):
        await caught_up.wait()
    await asyncio.sleep(0.3)
    assert not following.done()  # the lease looks alive: the stream waits
    await first.platform.manager.progress.begin(instance.id, instance.user_id)  # e.g. the reconciler's
    async with asyncio.timeout(10):
        await following
    assert [e["step"] for e in events] == ["config", "starting", "interrupted"]


async def test_a_stream_whose_instance_row_vanished_ends_after_the_grace(apps, sessions) -> None:
    first, second = apps
    instance = await _dead_holders_action(first, sessions, lease_s=60)
    async with sessions() as session:
        await session.execute(delete(Instance).where(Instance.id == instance.id))
        await session.commit()
    began = time.monotonic()
    events = await first.progress(str(instance.id), timeout=10)  # owner's, though the row is gone
    assert events[-1]["step"] == "interrupted"
    assert LEASE_TTL_S - 0.3 < time.monotonic() - began < LEASE_TTL_S + 1.0


async def test_the_events_stored_so_far_are_read_without_waiting_and_end_as_the_stream_does(apps, sessions) -> None:
    first, _ = apps
    hub = first.platform.manager.progress
    live = await _dead_holders_action(first, sessions, lease_s=60)
    began = time.monotonic()
    events, final = await hub.stored(live.id, 1)
    assert time.monotonic() - began < 1.0  # it does not wait for the next event, as following does
    assert [e.step for e in events] == ["config", "starting"] and not final
    await asyncio.sleep(0)
    async with sessions() as session:
        row = await session.get(Instance, live.id)
        row.lease_expires_at = utcnow() - timedelta(seconds=1)  # its holder is gone for good
        await session.commit()
    events, final = await hub.stored(live.id, 1)
    assert [e.step for e in events] == ["config", "starting", "interrupted"] and final
    assert [e.as_dict() for e in events] == await first.progress(str(live.id))  # what the stream says


async def test_a_lapsed_lease_of_an_action_still_running_in_this_process_is_no_interruption(
        settings, sessions, monkeypatch) -> None:
    """A stalled machine may renew a lease late. The action's own process knows it still runs:
    its followers wait for its real end, and nothing in it starts a second action meanwhile."""
    async def stalled(lease, session, ttl):  # renewals that never land, though the holder lives
        return None

    monkeypatch.setattr(InstanceLease, "renew", stalled)
    runtime = MemoryRuntime(ready_after=LEASE_TTL_S * 2)
    reader = UnavailableRuntime("this app only reads")  # no reconciler of the same runtime's
    async with running_api(settings, runtime) as first, running_api(settings, reader) as second:
        await first.sign_up()
        second.token = first.token
        _, created = await first.call("POST", "/api/instances", BODY)
        instance_id = uuid.UUID(created["id"])
        manager = first.platform.manager
        async with sessions() as session:
            while (await session.get(Instance, instance_id, populate_existing=True)).lease_expires_at > utcnow():
                await asyncio.sleep(0.1)  # lapsed, with the deploy still waiting for its gateway
        assert manager.action_in_progress(instance_id) is not None
        await _local_follower_waits_out_the_lapse(first, second, manager, instance_id)
    await runtime.close()


async def _local_follower_waits_out_the_lapse(first, second, manager, instance_id) -> None:
    events, final = await manager.progress.stored(instance_id, 1)
    assert not final and "interrupted" not in [e.step for e in events]
    with pytest.raises(Conflict):
        await manager.recover(instance_id)
    local = await first.progress(str(instance_id))
    assert local[-1]["done"] and "interrupted" not in [e["step"] for e in local]
    assert await second.progress(str(instance_id)) == local  # another process reads the same end
