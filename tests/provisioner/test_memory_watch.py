"""The memory watch's rounds over the database (SQLite, then PostgreSQL), with a manager that
records what it is asked: which gateway is restarted, when, and which is left alone. The real
gateway's side (the busy answer, the restart) is tests/e2e/test_memory_watch.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from db.errors import Conflict
from db.models import LatestResourceSample
from db.status import Status
from db.types import utcnow
from provisioner.memory_watch import MemoryWatch, MemoryWatchConfig, Verdict
from tests.support.builders import new_instance, saved_user

MB = 1024 * 1024


class RecordingManager:
    holder = "manager-test"

    class runtime:  # noqa: N801 - what the watch reads of the runtime: its name
        name = "process"

    def __init__(self) -> None:
        self.freed: list[uuid.UUID] = []
        self.refuse = False

    async def free_memory(self, instance_id: uuid.UUID) -> None:
        if self.refuse:
            raise Conflict("This instance is busy.")
        self.freed.append(instance_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _gateway(sessions, keyring, *, used_mb: int | None, limit_mb: int = 1000, status: Status = Status.RUNNING,
                   sampled_before_start: bool = False):
    user = await saved_user(sessions)
    started = utcnow() - timedelta(minutes=5)
    async with sessions() as session:
        instance = new_instance(keyring, user, status=status, memory_mb=limit_mb, running_since=started)
        session.add(instance)
        await session.flush()
        if used_mb is not None:
            taken = started - timedelta(seconds=10) if sampled_before_start else utcnow()
            session.add(LatestResourceSample(instance_id=instance.id, taken_at=taken, memory_bytes=used_mb * MB,
                                             cpu_seconds=1.0))
        await session.commit()
    return instance.id


def _watch(sessions, manager, clock, idle: dict[uuid.UUID, float | None], **config) -> MemoryWatch:
    settings = dict(threshold_percent=90, sustained_s=60, quiet_s=30) | config
    return MemoryWatch(sessions, manager, MemoryWatchConfig(**settings), lambda i: idle.get(i), clock)


async def test_only_a_gateway_high_for_long_enough_and_quiet_is_restarted(sessions, keyring, clock) -> None:
    manager = RecordingManager()
    big = await _gateway(sessions, keyring, used_mb=950)
    small = await _gateway(sessions, keyring, used_mb=500)
    chatty = await _gateway(sessions, keyring, used_mb=990)
    idle = {big: 120.0, small: 120.0, chatty: 5.0}
    watch = _watch(sessions, manager, clock, idle)

    assert await watch.check_once() == {big: Verdict.HIGH, small: Verdict.FINE, chatty: Verdict.HIGH}
    clock.now += 61
    assert await watch.check_once() == {big: Verdict.RESTARTING, small: Verdict.FINE, chatty: Verdict.NOT_QUIET}
    assert manager.freed == [big]
    # restarted: it must stay high for as long again before another restart
    assert (await watch.check_once())[big] is Verdict.HIGH
    idle[chatty] = 0.0  # a call in flight
    assert (await watch.check_once())[chatty] is Verdict.NOT_QUIET
    idle[chatty] = None  # none seen by this process (it just started): quiet, and the gateway decides
    assert (await watch.check_once())[chatty] is Verdict.RESTARTING
    assert manager.freed == [big, chatty]


async def test_a_dip_below_the_threshold_starts_the_count_again(sessions, keyring, clock) -> None:
    manager = RecordingManager()
    instance = await _gateway(sessions, keyring, used_mb=950)
    watch = _watch(sessions, manager, clock, {})
    assert (await watch.check_once())[instance] is Verdict.HIGH
    clock.now += 40
    async with sessions() as session:
        sample = await session.get(LatestResourceSample, instance)
        sample.memory_bytes, sample.taken_at = 700 * MB, utcnow()
        await session.commit()
    assert (await watch.check_once())[instance] is Verdict.FINE
    async with sessions() as session:
        sample = await session.get(LatestResourceSample, instance)
        sample.memory_bytes = 950 * MB
        await session.commit()
    clock.now += 40
    assert (await watch.check_once())[instance] is Verdict.HIGH  # 80 s since the first reading, 0 since the dip
    assert manager.freed == []


async def test_readings_from_before_its_start_stopped_gateways_and_busy_ones_are_left_alone(
        sessions, keyring, clock) -> None:
    manager = RecordingManager()
    stale = await _gateway(sessions, keyring, used_mb=990, sampled_before_start=True)
    stopped = await _gateway(sessions, keyring, used_mb=990, status=Status.STOPPED)
    unsampled = await _gateway(sessions, keyring, used_mb=None)
    taken = await _gateway(sessions, keyring, used_mb=990)
    watch = _watch(sessions, manager, clock, {}, sustained_s=0)
    manager.refuse = True  # an action holds the instance meanwhile
    verdicts = await watch.check_once()
    assert verdicts == {stale: Verdict.FINE, unsampled: Verdict.FINE, taken: Verdict.BUSY}
    assert stopped not in verdicts and manager.freed == []
    manager.refuse = False
    assert (await watch.check_once())[taken] is Verdict.RESTARTING
