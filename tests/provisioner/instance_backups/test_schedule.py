"""Scheduled instance backups over the whole platform (SQLite, then PostgreSQL) with in-memory
gateways whose state archives are small random files: which running instances a round backs up,
how many backups each keeps, an instance busy with its owner's backup left for the next round,
the platform's own rounds, and the backup metrics as a scraper reads them."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.models import InstanceBackup, Lease
from db.types import utcnow
from provisioner.instance_backups.schedule import LEASE_NAME, Verdict
from provisioner.runtimes.state_archives import StateArchiveFailed
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.metrics_scrape import scrape, value
from tests.support.waiting import eventually

BODY = {"model_provider": "openai", "api_key": "sk-proj-canaryCANARYcanary0123456789"}
HOUR = 3600


class ArchivingRuntime(MemoryRuntime):
    """In-memory gateways that can be archived. `hold`: an archive waits for it (a backup in
    progress); `fail`: the archive fails, as `openclaw backup create` can."""

    def __init__(self) -> None:
        super().__init__()
        self.archiving = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.fail = False

    async def archive_state(self, instance_id: uuid.UUID, state: dict):
        self.archiving.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise StateArchiveFailed("openclaw backup create failed (exit 1)")
        yield os.urandom(4096)


@pytest.fixture
def settings_for(settings_for):
    return lambda **overrides: settings_for(**{"max_instances_per_user": 3, "lease_ttl_s": 3, **overrides})


async def _first_round_over(api: Api) -> None:
    """The platform's own first round ran at its start, before any instance: the lease is left
    to lapse when the next is due, so the tests' rounds alone act."""
    async def over() -> bool:
        async with api.platform.sessions() as session:
            lease = await session.scalar(select(Lease).where(Lease.name == LEASE_NAME))
        return lease is not None and lease.expires_at is not None and lease.expires_at > utcnow() + timedelta(minutes=5)
    await eventually(over, what=lambda: "the schedule's first round did not end")


async def _running(api: Api, count: int) -> list[uuid.UUID]:
    await api.sign_up()
    await _first_round_over(api)
    made = []
    for _ in range(count):
        status, created = await api.call("POST", "/api/instances", BODY)
        assert status == 202, created
        assert (await api.progress(created["id"]))[-1]["done"]
        made.append(uuid.UUID(created["id"]))
    return made


async def _manual_backup(api: Api, instance_id: uuid.UUID) -> list[dict]:
    assert (await api.call("POST", f"/api/instances/{instance_id}/backups"))[0] == 202
    return await api.progress(str(instance_id))


async def _backdate(api: Api, instance_id: uuid.UUID, hours: float) -> None:
    async with api.platform.sessions() as session:
        backups = list(await session.scalars(select(InstanceBackup).where(InstanceBackup.instance_id == instance_id)))
        for backup in backups:
            await session.execute(update(InstanceBackup).where(InstanceBackup.id == backup.id)
                                  .values(created_at=backup.created_at - timedelta(hours=hours)))
        await session.commit()


async def _kinds(api: Api, instance_id: uuid.UUID) -> list[str]:
    status, listed = await api.call("GET", f"/api/instances/{instance_id}/backups")
    assert status == 200
    return [backup["kind"] for backup in listed["backups"]]


async def test_due_instances_get_a_scheduled_backup_recent_ones_do_not(settings_for, sessions) -> None:
    async with running_api(settings_for(instance_backup_every_hours=24), ArchivingRuntime()) as api:
        never, old, recent = await _running(api, 3)
        for instance_id in (old, recent):
            assert (await _manual_backup(api, instance_id))[-1]["done"]
        await _backdate(api, old, hours=25)

        schedule = api.platform.backup_schedule
        assert await schedule.run_once() == {never: Verdict.TAKEN, old: Verdict.TAKEN, recent: Verdict.NOT_DUE}
        assert await _kinds(api, never) == ["scheduled"]
        assert await _kinds(api, old) == ["scheduled", "manual"]
        assert await _kinds(api, recent) == ["manual"]
        assert set((await schedule.run_once()).values()) == {Verdict.NOT_DUE}  # nothing is due any more
        for instance_id in (never, old, recent):  # the gateways ran on throughout
            assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "running"


async def test_each_instance_keeps_the_newest_it_may(settings_for, sessions, tmp_path) -> None:
    async with running_api(settings_for(instance_backup_every_hours=1, instance_backups_kept=2),
                           ArchivingRuntime()) as api:
        (instance_id,) = await _running(api, 1)
        schedule = api.platform.backup_schedule
        for round_ in range(4):
            assert await schedule.run_once() == {instance_id: Verdict.TAKEN}, round_
            await _backdate(api, instance_id, hours=2)
        async with api.platform.sessions() as session:
            kept = list(await session.scalars(select(InstanceBackup).where(InstanceBackup.instance_id == instance_id)))
    assert len(kept) == 2 and {backup.kind for backup in kept} == {"scheduled"}
    assert sorted(path.name for path in (tmp_path / "instance-backups" / str(instance_id)).iterdir()) == \
        sorted(f"{backup.id}.cfib" for backup in kept)


async def test_an_instance_busy_with_its_owners_action_is_tried_at_the_next_round(settings_for, sessions) -> None:
    runtime = ArchivingRuntime()
    async with running_api(settings_for(), runtime) as api:
        busy, free = await _running(api, 2)
        owners = runtime.hold = asyncio.Event()
        assert (await api.call("POST", f"/api/instances/{busy}/backups"))[0] == 202
        await asyncio.wait_for(runtime.archiving.wait(), 10)  # the owner's backup is under way
        runtime.hold = None  # the schedule's own archives do not wait

        schedule = api.platform.backup_schedule
        assert await schedule.run_once() == {busy: Verdict.BUSY, free: Verdict.TAKEN}
        runtime.fail = True  # the owner's backup fails: the instance is still due
        owners.set()
        assert (await api.progress(str(busy)))[-1]["failed"]
        runtime.fail = False
        assert await schedule.run_once() == {busy: Verdict.TAKEN, free: Verdict.NOT_DUE}
        assert await _kinds(api, busy) == ["scheduled"]

        families = await scrape(api)
    assert value(families, "clawfleet_instance_backups_taken_total", kind="scheduled") == 2
    assert value(families, "clawfleet_instance_backups_failed_total", kind="manual") == 1
    assert value(families, "clawfleet_instance_backups_failed_total", kind="scheduled") == 0


async def test_no_schedule_when_the_allowance_has_none(settings_for, sessions) -> None:
    async with running_api(settings_for(instance_backup_every_hours=0), ArchivingRuntime()) as api:
        (instance_id,) = await _running(api, 1)
        assert await api.platform.backup_schedule.run_once() == {instance_id: Verdict.OFF}
        assert await _kinds(api, instance_id) == []


async def test_the_platforms_own_rounds_back_up_a_running_instance(settings_for, sessions) -> None:
    async with running_api(settings_for(instance_backup_check_interval_s=1), ArchivingRuntime()) as api:
        await api.sign_up()
        status, created = await api.call("POST", "/api/instances", BODY)
        assert status == 202
        instance_id = uuid.UUID(created["id"])

        async def backed_up() -> bool:
            return await _kinds(api, instance_id) == ["scheduled"]
        await eventually(backed_up, timeout=30, what=lambda: "no scheduled backup came")


async def test_the_oldest_latest_backup_age_is_read_at_scrape_time(settings_for, sessions) -> None:
    async with running_api(settings_for(), ArchivingRuntime()) as api:
        backed_up, stale = await _running(api, 2)
        for instance_id in (backed_up, stale):
            assert (await _manual_backup(api, instance_id))[-1]["done"]
        families = await scrape(api)
        assert 0 <= value(families, "clawfleet_instance_backup_oldest_latest_age_seconds") < 120
        await _backdate(api, stale, hours=5)
        age = value(await scrape(api), "clawfleet_instance_backup_oldest_latest_age_seconds")
        assert 5 * HOUR <= age < 5 * HOUR + 120
        assert (await api.call("POST", f"/api/instances/{stale}/stop"))[0] == 202
        assert (await api.progress(str(stale)))[-1]["done"]
        families = await scrape(api)  # a stopped instance's state does not change: it counts no more
        assert value(families, "clawfleet_instance_backup_oldest_latest_age_seconds") < 120
        assert value(families, "clawfleet_instance_backups_not_uploaded") == 0
