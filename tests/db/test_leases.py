"""Leases: one holder at a time, across sessions (as across processes), on both databases."""

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from db.leases import (
    InstanceLease,
    LeaseLost,
    LeaseNotTaken,
    NamedLease,
    acquire_instance_lease,
    acquire_named_lease,
    every_as_singleton,
    hold,
    lock_for_transaction,
    release_instance_lease,
    release_named_lease,
    request_instance_cancel,
)
from db.models import Instance, Lease
from tests.support.builders import new_instance, new_user
from tests.support.db_faults import failing_statements, releases_named_lease

MINUTE = timedelta(minutes=1)


async def _stored_instance(sessions, keyring) -> Instance:
    user = new_user()
    instance = new_instance(keyring, user)
    async with sessions() as session:
        session.add_all([user, instance])
        await session.commit()
    return instance


async def test_an_instance_lease_has_one_holder(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a, sessions() as b:
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)
        assert not await acquire_instance_lease(b, instance.id, "web-2", MINUTE)
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)  # renewal
        await release_instance_lease(a, instance.id, "web-1")
        assert await acquire_instance_lease(b, instance.id, "web-2", MINUTE)


async def test_an_expired_instance_lease_can_be_taken_over(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a, sessions() as b:
        assert await acquire_instance_lease(a, instance.id, "dead-process", timedelta(seconds=-1))
        assert await acquire_instance_lease(b, instance.id, "web-2", MINUTE)
        await release_instance_lease(a, instance.id, "dead-process")  # not its lease any more
        assert not await acquire_instance_lease(a, instance.id, "web-3", MINUTE)


async def test_releasing_someone_elses_lease_does_nothing(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a:
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)
        await release_instance_lease(a, instance.id, "web-2")
        assert not await acquire_instance_lease(a, instance.id, "web-2", MINUTE)


async def test_racing_for_a_named_lease_gives_exactly_one_winner(sessions) -> None:
    async def contender(holder: str) -> bool:
        async with sessions() as session:
            return await acquire_named_lease(session, "reconciler", holder, MINUTE)

    results = await asyncio.gather(*(contender(f"process-{n}") for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_a_named_lease_is_free_again_once_released(sessions) -> None:
    async with sessions() as session:
        assert await acquire_named_lease(session, "telegram-polling", "a", MINUTE)
        assert not await acquire_named_lease(session, "telegram-polling", "b", MINUTE)
        await release_named_lease(session, "telegram-polling", "a")
        assert await acquire_named_lease(session, "telegram-polling", "b", MINUTE)


async def test_count_then_insert_under_a_transaction_lock_decides_once(sessions) -> None:
    """Six transactions, each seeing no row yet and adding one, as a cap of one would: the
    lock makes each see the one before it."""
    async def contender(n: int) -> bool:
        async with sessions() as session:
            await lock_for_transaction(session, "admission")
            seen = await session.scalar(select(func.count()).select_from(Lease).where(Lease.name.like("slot-%")))
            await asyncio.sleep(0.05)  # the decision takes a while: without the lock all six see none
            if seen:
                return False
            session.add(Lease(name=f"slot-{n}"))
            await session.commit()
            return True

    results = await asyncio.gather(*(contender(n) for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]


# -- hold(): work runs only while its lease is held ------------------------------------------
TTL_S = 0.6  # renewed every 0.2 s


async def test_hold_renews_the_lease_while_the_work_runs_then_releases_it(sessions) -> None:
    lease = NamedLease("renewed", "a")

    async def work() -> str:
        await asyncio.sleep(TTL_S * 3)  # outlives the TTL three times over: only renewal keeps it
        async with sessions() as session:
            assert not await acquire_named_lease(session, "renewed", "b", MINUTE)
        return "done"

    assert await hold(sessions, lease, TTL_S, work) == "done"
    async with sessions() as session:
        assert await acquire_named_lease(session, "renewed", "b", MINUTE)  # released on exit


async def test_hold_stops_the_work_when_the_lease_is_taken_over(sessions) -> None:
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    async def steal() -> None:
        await asyncio.sleep(0.1)
        async with sessions() as session:  # as a process would after this one's lease lapsed
            await session.execute(update(Lease).where(Lease.name == "stolen").values(holder="thief"))
            await session.commit()

    thief = asyncio.create_task(steal())
    with pytest.raises(LeaseLost, match="taken over"):
        async with asyncio.timeout(5):
            await hold(sessions, NamedLease("stolen", "a"), TTL_S, work)
    await thief
    assert stopped.is_set()
    async with sessions() as session:
        assert await session.scalar(select(Lease.holder).where(Lease.name == "stolen")) == "thief"  # not released


async def test_hold_refuses_a_lease_someone_else_has(sessions) -> None:
    async with sessions() as session:
        assert await acquire_named_lease(session, "taken", "other", MINUTE)
    ran = False

    async def work() -> None:
        nonlocal ran
        ran = True

    with pytest.raises(LeaseNotTaken):
        await hold(sessions, NamedLease("taken", "a"), TTL_S, work)
    assert not ran


async def test_a_cancel_request_on_the_row_stops_an_instance_action(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    lease = InstanceLease(instance.id, "web-1/1", "deploy")

    async def ask_to_cancel() -> None:
        await asyncio.sleep(0.1)
        async with sessions() as session:
            assert await request_instance_cancel(session, instance.id, "web-1/1")

    asking = asyncio.create_task(ask_to_cancel())
    with pytest.raises(LeaseLost, match="cancel requested"):
        async with asyncio.timeout(5):
            await hold(sessions, lease, TTL_S, lambda: asyncio.sleep(60))
    await asking
    async with sessions() as session:
        row = await session.get(Instance, instance.id)
        assert (row.lease_holder, row.action, row.cancel_requested_at) == (None, None, None)


async def test_cancelling_the_holder_cancels_the_work_and_releases(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    started, stopped = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    holding = asyncio.create_task(hold(sessions, InstanceLease(instance.id, "web-1/1", "restart"), TTL_S, work))
    await started.wait()
    async with sessions() as session:
        assert (await session.get(Instance, instance.id)).action == "restart"
    holding.cancel()
    await asyncio.gather(holding, return_exceptions=True)
    assert stopped.is_set()
    async with sessions() as session:
        assert await acquire_instance_lease(session, instance.id, "web-2/1", MINUTE)


async def test_hold_retries_a_release_the_database_failed(engine, sessions) -> None:
    with failing_statements(engine, releases_named_lease, times=2) as faults:
        assert await hold(sessions, NamedLease("flaky", "a"), TTL_S, lambda: asyncio.sleep(0)) is None
    assert faults.failed == 2
    async with sessions() as session:
        assert await acquire_named_lease(session, "flaky", "b", MINUTE)  # free at once, not after a TTL


async def test_a_release_that_keeps_failing_leaves_the_lease_to_lapse(engine, sessions) -> None:
    async def work() -> str:
        return "done"

    ttl_s = 3.0  # outlasts the retries
    began = time.monotonic()
    with failing_statements(engine, releases_named_lease, times=1000) as faults:
        assert await hold(sessions, NamedLease("broken", "a"), ttl_s, work) == "done"  # the work's result stands
    assert faults.failed == 4  # the first try and three more
    async with sessions() as session:
        if time.monotonic() - began < ttl_s - 0.5:  # a loaded machine may take the whole ttl to retry
            assert not await acquire_named_lease(session, "broken", "b", MINUTE)
        async with asyncio.timeout(ttl_s + 2):
            while not await acquire_named_lease(session, "broken", "b", MINUTE):
                await asyncio.sleep(0.1)


async def test_rare_rounds_run_in_one_process_at_a_time_and_hold_nothing_between(sessions) -> None:
    rounds: list[str] = []
    running: list[str] = []

    def round_of(holder: str):
        async def once() -> None:
            assert not running, f"{holder} ran while {running} did"
            running.append(holder)
            rounds.append(holder)
            await asyncio.sleep(0.05)
            running.remove(holder)
        return once

    tasks = [asyncio.create_task(every_as_singleton(sessions, "rare", holder, 3, 0.5, round_of(holder), "test"))
             for holder in ("one", "two")]
    try:
        await asyncio.sleep(1.6)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert 3 <= len(rounds) <= 5, rounds  # one round per interval, not one per process
    assert len(set(rounds)) == 1  # the holder keeps the rounds while it lives
