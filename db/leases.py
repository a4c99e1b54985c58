"""Leases: one holder at a time, taken with a conditional UPDATE (same on SQLite and PostgreSQL).

A holder that dies simply lets its lease expire; another process may then take it over.
Each call is its own committed transaction, so other processes see the lease at once.

`hold()` is the one way work runs under a lease: it renews the lease at a third of its TTL,
stops the work when the lease is lost (taken over, not renewable for a whole TTL, or, for an
instance, a cancel request written on its row by another process), and releases it on exit.

`lock_for_transaction()` is the short form: a named row locked for one transaction, so a
decision that counts before it inserts is made by one transaction at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, Lease
from db.types import utcnow

log = structlog.get_logger(__name__)

T = TypeVar("T")
RELEASE_TRIES = (0.2, 0.5, 1.0)  # pauses between attempts: a lease left behind blocks its instance for a TTL


async def acquire_instance_lease(
    session: AsyncSession, instance_id: uuid.UUID, holder: str, ttl: timedelta, action: str | None = None
) -> bool:
    """Take (or renew) the instance's lease, naming the action it is for. True when `holder`
    now has it. A fresh take clears any cancel request left for an earlier holder. Commits."""
    now = utcnow()
    values: dict[str, object] = {"lease_holder": holder, "lease_expires_at": now + ttl}
    if action is not None:
        values |= {"action": action, "cancel_requested_at": None}
    result = await session.execute(
        update(Instance)
        .where(
            Instance.id == instance_id,
            or_(
                Instance.lease_holder.is_(None),
                Instance.lease_holder == holder,
                Instance.lease_expires_at < now,
            ),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1


async def release_instance_lease(session: AsyncSession, instance_id: uuid.UUID, holder: str) -> None:
    await session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.lease_holder == holder)
        .values(lease_holder=None, lease_expires_at=None, action=None, cancel_requested_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def request_instance_cancel(session: AsyncSession, instance_id: uuid.UUID, holder: str) -> bool:
    """Ask `holder` (in whichever process) to stop its action; it checks at each renewal. Commits."""
    result = await session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.lease_holder == holder)
        .values(cancel_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1


async def _ensure_lease_row(session: AsyncSession, name: str) -> None:
    if await session.scalar(select(Lease.id).where(Lease.name == name)) is None:
        try:
            async with session.begin_nested():
                session.add(Lease(name=name))
        except IntegrityError:
            pass  # another process created the row first


async def acquire_named_lease(session: AsyncSession, name: str, holder: str, ttl: timedelta) -> bool:
    """Take (or renew) a singleton lease such as "reconciler". Commits."""
    await _ensure_lease_row(session, name)
    now = utcnow()
    result = await session.execute(
        update(Lease)
        .where(
            Lease.name == name,
            or_(Lease.holder.is_(None), Lease.holder == holder, Lease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1


async def release_named_lease(session: AsyncSession, name: str, holder: str) -> None:
    await session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def lock_for_transaction(session: AsyncSession, name: str) -> None:
    """Open `session`'s transaction with a write to the named lease row: until that transaction
    ends, every other one that does the same for `name` waits (PostgreSQL locks the row; SQLite
    lets one writer in at a time). What is read and written after it (a count, then an insert)
    is one decision, whatever runs in other processes. Call it first on a fresh session: a
    missing row is made, and committed, before the transaction begins."""
    await _ensure_lease_row(session, name)
    await session.commit()
    await session.execute(update(Lease).where(Lease.name == name).values(holder=Lease.holder)
                          .execution_options(synchronize_session=False))


# -- holding a lease while work runs -----------------------------------------------------------
class LeaseNotTaken(Exception):
    """Someone else holds the lease."""


class LeaseLost(Exception):
    """The lease went while the work ran; the work was stopped. The message says why."""


class HeldLease(Protocol):
    holder: str

    async def take(self, session: AsyncSession, ttl: timedelta) -> bool: ...

    async def renew(self, session: AsyncSession, ttl: timedelta) -> str | None:
        """None while still held; otherwise why it is not (the work must stop)."""

    async def release(self, session: AsyncSession) -> None: ...


@dataclass(frozen=True)
class InstanceLease:
    """One action at a time on an instance; the row names the action, for refusals and the API."""

    instance_id: uuid.UUID
    holder: str
    action: str

    async def take(self, session: AsyncSession, ttl: timedelta) -> bool:
        return await acquire_instance_lease(session, self.instance_id, self.holder, ttl, self.action)

    async def renew(self, session: AsyncSession, ttl: timedelta) -> str | None:
        if not await acquire_instance_lease(session, self.instance_id, self.holder, ttl):
            return "taken over"
        requested = await session.scalar(select(Instance.cancel_requested_at).where(Instance.id == self.instance_id))
        return "cancel requested" if requested is not None else None

    async def release(self, session: AsyncSession) -> None:
        await release_instance_lease(session, self.instance_id, self.holder)


@dataclass(frozen=True)
class NamedLease:
    """A singleton: of all platform processes, one does this (polling, reconciling)."""

    name: str
    holder: str

    async def take(self, session: AsyncSession, ttl: timedelta) -> bool:
        return await acquire_named_lease(session, self.name, self.holder, ttl)

    async def renew(self, session: AsyncSession, ttl: timedelta) -> str | None:
        return None if await acquire_named_lease(session, self.name, self.holder, ttl) else "taken over"

    async def release(self, session: AsyncSession) -> None:
        await release_named_lease(session, self.name, self.holder)


async def hold(sessions: async_sessionmaker[AsyncSession], lease: HeldLease, ttl_s: float,
               work: Callable[[], Awaitable[T]], *, taken: bool = False, release: bool = True) -> T:
    """Run `work` while holding `lease`, and return what it returns.

    `taken`: the caller took the lease already (so its caller learned "busy" at once). Raises
    LeaseNotTaken when someone else holds it, and LeaseLost once the work was stopped because the
    lease went. Cancelling the caller cancels the work. The lease is released on every exit,
    unless `release` is False: then the caller releases it (in a transaction of its own making).
    """
    ttl = timedelta(seconds=ttl_s)
    if not taken:
        async with sessions() as session:
            if not await lease.take(session, ttl):
                raise LeaseNotTaken(lease.holder)
    loop = asyncio.get_running_loop()
    working = asyncio.ensure_future(work())
    try:
        renewed = loop.time()
        while True:
            done, _ = await asyncio.wait({working}, timeout=ttl_s / 3)
            if done:
                return working.result()
            try:
                async with sessions() as session:
                    why = await lease.renew(session, ttl)
            except Exception:  # the database away for a moment: keep working while the lease lasts
                log.warning("could not renew a lease", holder=lease.holder, exc_info=True)
                why = "not renewed within its TTL" if loop.time() - renewed >= ttl_s else None
            else:
                if why is None:
                    renewed = loop.time()
            if why is not None:
                log.warning("lease lost: stopping its work", holder=lease.holder, reason=why)
                working.cancel()
                await asyncio.gather(working, return_exceptions=True)
                raise LeaseLost(why)
    finally:
        if not working.done():
            working.cancel()
            await asyncio.gather(working, return_exceptions=True)
        if release:
            await release_with_retries(sessions, lease)


async def as_singleton(sessions: async_sessionmaker[AsyncSession], name: str, holder: str, ttl_s: float,
                       work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` (a loop that does not return) in one platform process of all: whichever holds
    the named lease. The others try for it again every third of its TTL, so when the holder dies
    another takes over within a TTL. Never returns; cancel it to stop."""
    lease = NamedLease(name, holder)
    while True:
        try:
            await hold(sessions, lease, ttl_s, work)
        except (LeaseNotTaken, LeaseLost):
            pass  # another process does it (hold() logged a loss)
        except Exception:  # the database away, say: try for the lease again
            log.exception("singleton work stopped; trying again", lease=name)
        await asyncio.sleep(ttl_s / 3)


async def every_as_singleton(sessions: async_sessionmaker[AsyncSession], name: str, holder: str, ttl_s: float,
                             interval_s: float, once: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `once` every `interval_s` in one platform process at a time, for rare rounds (hourly):
    a round holds the named lease while it runs, then leaves it to lapse when the next round is
    due, so nothing is written between rounds and no other process runs one meanwhile. When the
    holder dies, another takes over at the next round's time. Never returns; cancel it to stop."""
    lease = NamedLease(name, holder)
    while True:
        ran = False
        try:
            await hold(sessions, lease, ttl_s, once, release=False)
            ran = True
            async with sessions() as session:  # kept, unrenewed, until the next round is due
                await acquire_named_lease(session, name, holder, timedelta(seconds=interval_s))
        except (LeaseNotTaken, LeaseLost):
            pass  # another process runs the rounds
        except Exception:
            log.exception("a periodic round failed", work=what)
        await asyncio.sleep(interval_s if ran else min(interval_s, ttl_s))


async def every(interval_s: float, once: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `once` now and then every `interval_s`; one failed round is logged, not the end."""
    while True:
        try:
            await once()
        except Exception:
            log.exception("a periodic round failed", work=what)
        await asyncio.sleep(interval_s)


async def release_with_retries(sessions: async_sessionmaker[AsyncSession], lease: HeldLease) -> None:
    """Release, trying again a few times: a database hiccup must not block the lease for a TTL."""

    async def release() -> None:
        async with sessions() as session:
            await lease.release(session)

    if not await with_retries(release):
        log.error("could not release a lease; it lapses by itself", holder=lease.holder)


async def with_retries(write: Callable[[], Awaitable[object]]) -> bool:
    """Run `write` (a transaction of its own) until it succeeds, pausing RELEASE_TRIES between
    attempts: for what must reach the database as work ends. False when every attempt failed."""
    for pause in (*RELEASE_TRIES, None):
        try:
            await write()
            return True
        except Exception:
            log.warning("a database write failed", exc_info=True, retrying=pause is not None)
            if pause is not None:
                await asyncio.sleep(pause)
    return False
