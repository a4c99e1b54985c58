"""The one sender of broadcasts, of all platform processes (a named lease, db.leases): it claims
a batch of pending deliveries (`sending`, committed) before it sends them, through the Notifier,
so through the bot and its pacing to Telegram's limits (bot/pacing.py), then records each
outcome. A delivery is never sent twice: one still `sending` when a sender takes the lease was
claimed by a sender that died mid-send, so it may have reached its chat, and is failed rather
than sent again. A sender that is stopped (the platform's shutdown) lets its batch finish first,
so a restart loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.broadcasts import DELIVERED, FAILED, PENDING, SENDING
from db.leases import as_singleton
from db.models import Broadcast, BroadcastDelivery
from db.types import utcnow
from provisioner.notify import Notifier

log = structlog.get_logger(__name__)

LEASE_NAME = "broadcasts"
INTERRUPTED = "the platform stopped while sending it: not sent again, so nobody gets it twice"


@dataclass(frozen=True)
class SenderConfig:
    lease_ttl_s: float = 30
    batch: int = 20  # sent at once; the bot's pacing spreads them out
    poll_s: float = 5.0  # also woken at once by `wake()` after a broadcast is queued in this process
    finish_batch_s: float = 30.0  # what a stopped sender waits for the batch it is sending


class BroadcastSender:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], notifier: Notifier, config: SenderConfig, *,
                 holder: str) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.config = config
        self.holder = f"{holder}/broadcasts"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await as_singleton(self.sessions, LEASE_NAME, self.holder, self.config.lease_ttl_s, self._send_forever)

    async def _send_forever(self) -> None:
        await self.fail_interrupted()
        while True:
            self._wake.clear()
            try:
                while await self.send_batch():
                    pass
            except Exception:  # the database away a moment: next round
                log.exception("broadcast round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
            except TimeoutError:
                pass

    async def fail_interrupted(self) -> int:
        """Deliveries a dead sender claimed: failed, never sent again."""
        async with self.sessions() as session:
            result = await session.execute(
                update(BroadcastDelivery).where(BroadcastDelivery.state == SENDING)
                .values(state=FAILED, error=INTERRUPTED, updated_at=utcnow()).execution_options(synchronize_session=False))
            await session.commit()
        if result.rowcount:
            log.warning("broadcast deliveries interrupted by a stop; not sent again", count=result.rowcount)
        await self._finish()
        return result.rowcount

    async def send_batch(self) -> int:
        """Claim and send the next batch, oldest broadcast first; how many were sent (0: none left)."""
        claimed = await self._claim()
        if claimed:
            # shielded: a stop waits for the batch, whose messages may be on their way already
            batch = asyncio.ensure_future(self._send(claimed))
            try:
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                await asyncio.wait({batch}, timeout=self.config.finish_batch_s)
                raise
        await self._finish()
        return len(claimed)

    async def _claim(self) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        async with self.sessions() as session:
            due = (await session.execute(
                select(BroadcastDelivery.id).join(Broadcast, Broadcast.id == BroadcastDelivery.broadcast_id)
                .where(BroadcastDelivery.state == PENDING)
                .order_by(Broadcast.created_at, BroadcastDelivery.id).limit(self.config.batch))).scalars().all()
            if not due:
                return []
            claimed = (await session.execute(
                update(BroadcastDelivery).where(BroadcastDelivery.id.in_(due), BroadcastDelivery.state == PENDING)
                .values(state=SENDING, updated_at=utcnow())
                .returning(BroadcastDelivery.id, BroadcastDelivery.user_id, BroadcastDelivery.broadcast_id)
                .execution_options(synchronize_session=False))).all()
            texts = dict((await session.execute(select(Broadcast.id, Broadcast.text).where(
                Broadcast.id.in_({row.broadcast_id for row in claimed})))).all())
            await session.commit()
        return [(row.id, row.user_id, texts[row.broadcast_id]) for row in claimed]

    async def _send(self, claimed: list[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
        outcomes = await asyncio.gather(*(self._deliver(user_id, text) for _, user_id, text in claimed))
        async with self.sessions() as session:
            for (delivery_id, _, _), error in zip(claimed, outcomes, strict=True):
                await session.execute(update(BroadcastDelivery).where(BroadcastDelivery.id == delivery_id).values(
                    state=DELIVERED if error is None else FAILED, error=error, updated_at=utcnow())
                    .execution_options(synchronize_session=False))
            await session.commit()

    async def _deliver(self, user_id: uuid.UUID, text: str) -> str | None:
        try:
            return await self.notifier.deliver(user_id, text)
        except Exception as exc:  # one chat's failure is that delivery's, not the batch's
            return f"{type(exc).__name__}: {exc}"[:500]

    async def _finish(self) -> None:
        """Broadcasts with nothing left to send are finished."""
        unsent = exists().where(BroadcastDelivery.broadcast_id == Broadcast.id,
                                BroadcastDelivery.state.in_((PENDING, SENDING)))
        async with self.sessions() as session:
            await session.execute(update(Broadcast).where(Broadcast.finished_at.is_(None), ~unsent)
                                  .values(finished_at=utcnow()).execution_options(synchronize_session=False))
            await session.commit()
