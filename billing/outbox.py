"""The outbox: what billing changes cause, carried out after the change is committed (and the
meter events of billed overage, billing.overage, queued with what they report; and the
suspensions an operator asks for at the command line, admin.requests).

An effect is written in the transaction that records its cause (billing.service), so a crash
before that commit leaves neither, and one after it leaves the effect to do. One worker, of all
platform processes (a named lease), carries them out in order: each handler is idempotent (it
looks at what is there before acting), so an effect whose worker died half-way is simply done
again. A failure is retried with a growing pause; after MAX_ATTEMPTS it is given up, logged as an
error, and stays listed (`clawfleet billing effects`) for the operator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.leases import as_singleton
from db.models import OutboxEffect
from db.types import utcnow

log = structlog.get_logger(__name__)

LEASE_NAME = "billing-outbox"
BACKOFF_S = (2, 10, 30, 120, 600, 1800, 3600)  # then hourly
MAX_ATTEMPTS = 30  # about a day of trying
BATCH = 20

Handler = Callable[[OutboxEffect], Awaitable[None]]


def enqueue(session: AsyncSession, *, key: str, kind: str, user_id: uuid.UUID | None,
            payload: dict[str, Any] | None = None) -> None:
    """Add an effect to the caller's transaction; `key` names its cause (unique)."""
    session.add(OutboxEffect(key=key[:255], kind=kind, user_id=user_id, payload=payload or {},
                             next_attempt_at=utcnow()))


@dataclass(frozen=True)
class OutboxConfig:
    lease_ttl_s: float = 30
    poll_s: float = 5.0  # also woken at once by `wake()` after a commit in this process


class OutboxWorker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], handlers: dict[str, Handler],
                 config: OutboxConfig, *, holder: str) -> None:
        self.sessions = sessions
        self.handlers = handlers
        self.config = config
        self.holder = f"{holder}/outbox"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await as_singleton(self.sessions, LEASE_NAME, self.holder, self.config.lease_ttl_s, self._work_forever)

    async def _work_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.run_once() == BATCH:
                    pass
            except Exception:  # the database away a moment: next round
                log.exception("billing outbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Carry out the effects that are due, oldest first; how many were tried."""
        async with self.sessions() as session:
            due = list(await session.scalars(
                select(OutboxEffect).where(OutboxEffect.done_at.is_(None), OutboxEffect.given_up_at.is_(None),
                                           OutboxEffect.next_attempt_at <= utcnow())
                .order_by(OutboxEffect.created_at).limit(BATCH)))
        for effect in due:
            await self._carry_out(effect)
        return len(due)

    async def _claim(self, effect: OutboxEffect) -> bool:
        """Push the effect's next attempt past a lease period, unless another worker did first:
        one that lost the lease but is still finishing its batch never runs an effect twice."""
        async with self.sessions() as session:
            result = await session.execute(
                update(OutboxEffect).where(OutboxEffect.id == effect.id, OutboxEffect.done_at.is_(None),
                                           OutboxEffect.next_attempt_at == effect.next_attempt_at)
                .values(next_attempt_at=utcnow() + timedelta(seconds=self.config.lease_ttl_s))
                .execution_options(synchronize_session=False))
            await session.commit()
            return result.rowcount == 1

    async def _carry_out(self, effect: OutboxEffect) -> None:
        if not await self._claim(effect):
            return
        handler = self.handlers.get(effect.kind)
        error = None
        try:
            if handler is None:
                raise LookupError(f"no handler for effect kind {effect.kind!r}")
            await handler(effect)
        except Exception as exc:  # any failure is retried; its kind and words are kept for the operator
            error = f"{type(exc).__name__}: {exc}"[:500]
        async with self.sessions() as session:
            row = await session.get(OutboxEffect, effect.id)
            if row is None:
                return
            row.attempts += 1
            if error is None:
                row.done_at, row.last_error = utcnow(), None
            else:
                row.last_error = error
                pause = BACKOFF_S[min(row.attempts - 1, len(BACKOFF_S) - 1)]
                row.next_attempt_at = utcnow() + timedelta(seconds=pause)
                if row.attempts >= MAX_ATTEMPTS:
                    row.given_up_at = utcnow()
                    log.error("billing effect given up", kind=row.kind, key=row.key, attempts=row.attempts,
                              error=error)
                else:
                    log.warning("billing effect failed; retrying", kind=row.kind, key=row.key,
                                attempts=row.attempts, retry_in_s=pause, error=error)
            await session.commit()


async def pending_effects(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxEffect]:
    """Effects not done yet (given up ones included), for the operator."""
    async with sessions() as session:
        return list(await session.scalars(select(OutboxEffect).where(OutboxEffect.done_at.is_(None))
                                          .order_by(OutboxEffect.created_at)))


async def retry_given_up(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Give the given-up effects another round of attempts, from now (the operator fixed the cause)."""
    async with sessions() as session:
        result = await session.execute(
            update(OutboxEffect).where(OutboxEffect.done_at.is_(None), OutboxEffect.given_up_at.is_not(None))
            .values(given_up_at=None, attempts=0, next_attempt_at=utcnow()).execution_options(synchronize_session=False))
        await session.commit()
        return result.rowcount
