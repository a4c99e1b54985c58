"""The outbox worker: effects are carried out once, in order, retried with backoff when they
fail, given up (and kept for the operator) after too many attempts; one worker of all processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from billing import outbox
from billing.outbox import OutboxConfig, OutboxWorker, enqueue, pending_effects
from db.models import OutboxEffect
from db.types import utcnow


async def queue(sessions, *keys, kind="note"):
    async with sessions() as session:
        for key in keys:
            enqueue(session, key=key, kind=kind, user_id=None, payload={"key": key})
        await session.commit()


async def due_now(sessions):
    async with sessions() as session:
        await session.execute(update(OutboxEffect).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        await session.commit()


async def test_effects_run_once_in_the_order_they_were_queued(sessions):
    done = []

    async def note(effect):
        done.append(effect.payload["key"])

    await queue(sessions, "a", "b", "c")
    worker = OutboxWorker(sessions, {"note": note}, OutboxConfig(), holder="test")
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0
    assert done == ["a", "b", "c"]
    assert await pending_effects(sessions) == []


async def test_a_failing_effect_is_retried_later_and_its_error_kept(sessions):
    calls = []

    async def flaky(effect):
        calls.append(effect.attempts)
        if len(calls) < 3:
            raise RuntimeError("the gateway host is busy")

    await queue(sessions, "x", kind="flaky")
    worker = OutboxWorker(sessions, {"flaky": flaky}, OutboxConfig(), holder="test")
    await worker.run_once()
    assert await worker.run_once() == 0  # not due yet: it waits its backoff
    [pending] = await pending_effects(sessions)
    assert pending.attempts == 1 and pending.last_error == "RuntimeError: the gateway host is busy"
    assert pending.next_attempt_at > utcnow() + timedelta(seconds=outbox.BACKOFF_S[0] - 1)
    await due_now(sessions)
    await worker.run_once()
    await due_now(sessions)
    await worker.run_once()
    assert calls == [0, 1, 2] and await pending_effects(sessions) == []


async def test_an_effect_that_keeps_failing_is_given_up_and_stays_listed(sessions, monkeypatch):
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)

    async def broken(effect):
        raise ValueError("no such plan")

    await queue(sessions, "y", kind="broken")
    await queue(sessions, "z", kind="unknown-kind")
    worker = OutboxWorker(sessions, {"broken": broken}, OutboxConfig(), holder="test")
    for _ in range(2):
        await worker.run_once()
        await due_now(sessions)
    assert await worker.run_once() == 0
    left = {effect.key: effect for effect in await pending_effects(sessions)}
    assert left["y"].given_up_at is not None and left["y"].last_error == "ValueError: no such plan"
    assert "no handler" in left["z"].last_error


async def test_of_two_workers_only_the_lease_holder_carries_effects_out(sessions):
    ran = []

    async def note(effect):
        ran.append(effect.key)

    config = OutboxConfig(lease_ttl_s=3, poll_s=0.1)
    first = OutboxWorker(sessions, {"note": note}, config, holder="one")
    second = OutboxWorker(sessions, {"note": note}, config, holder="two")
    tasks = [asyncio.create_task(worker.run()) for worker in (first, second)]
    try:
        await queue(sessions, *[f"k{n}" for n in range(10)])
        for worker in (first, second):
            worker.wake()
        for _ in range(200):  # until every effect is recorded done, not merely run
            if not await pending_effects(sessions):
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(ran) == sorted(f"k{n}" for n in range(10))  # each exactly once
    async with sessions() as session:
        done = list(await session.scalars(select(OutboxEffect.attempts)))
    assert done == [1] * 10


async def test_two_rounds_at_once_never_run_an_effect_twice(sessions):
    """A worker that lost its lease may still be finishing its batch when the next holder starts."""
    ran = []

    async def slow(effect):
        ran.append(effect.key)
        await asyncio.sleep(0.05)

    await queue(sessions, *[f"e{n}" for n in range(6)], kind="slow")
    first = OutboxWorker(sessions, {"slow": slow}, OutboxConfig(), holder="old")
    second = OutboxWorker(sessions, {"slow": slow}, OutboxConfig(), holder="new")
    await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(ran) == [f"e{n}" for n in range(6)]
