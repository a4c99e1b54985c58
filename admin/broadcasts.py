"""Broadcasts: a message from the operator to everyone with a Telegram chat with the bot. Its
recipients are fixed when it is queued (one delivery row each, written in the transaction that
queues it), so a restart neither loses nor adds anyone; admin.broadcast_sender delivers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.paging import PAGE_SIZE, Page, newest_first
from db import audit
from db.errors import InvalidInput, NotFound
from db.models import Broadcast, BroadcastDelivery, User
from db.types import utcnow

MAX_TEXT = 4000  # inside Telegram's 4096 characters a message
PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


@dataclass(frozen=True)
class Progress:
    broadcast: Broadcast
    delivered: int
    failed: int
    waiting: int  # pending or being sent

    @property
    def done(self) -> bool:
        return self.broadcast.finished_at is not None


class Broadcasts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, wake: Callable[[], None] = lambda: None) -> None:
        self.sessions = sessions
        self.wake = wake  # this process's sender, when it runs here: at once rather than at its next look

    async def recipients(self) -> int:
        async with self.sessions() as session:
            return await session.scalar(select(func.count()).select_from(User).where(User.telegram_chat_id.is_not(None)))

    async def queue(self, text: object, *, actor: str, created_by: uuid.UUID | None = None) -> Broadcast:
        text = checked_text(text)
        async with self.sessions() as session:
            users = list(await session.scalars(select(User.id).where(User.telegram_chat_id.is_not(None))))
            broadcast = Broadcast(text=text, actor=actor, created_by=created_by, recipients=len(users),
                                  finished_at=None if users else utcnow())
            session.add(broadcast)
            await session.flush()
            if users:
                await session.execute(insert(BroadcastDelivery), [
                    {"id": uuid.uuid4(), "broadcast_id": broadcast.id, "user_id": user_id, "state": PENDING,
                     "updated_at": utcnow()} for user_id in users])
            audit.record(session, actor=actor, action="admin.broadcast",
                         details={"broadcast_id": str(broadcast.id), "recipients": len(users), "text": text[:200]})
            await session.commit()
        self.wake()
        return broadcast

    async def progress(self, broadcast_id: object) -> Progress:
        try:
            key = uuid.UUID(str(broadcast_id))
        except ValueError:
            raise NotFound("No such broadcast.", field="broadcast") from None
        async with self.sessions() as session:
            broadcast = await session.get(Broadcast, key)
            if broadcast is None:
                raise NotFound("No such broadcast.", field="broadcast")
            return (await self._progress(session, [broadcast]))[0]

    async def latest(self, *, after: object = None, size: int = PAGE_SIZE) -> Page[Progress]:
        async with self.sessions() as session:
            rows, cursor = await newest_first(session, select(Broadcast), Broadcast.created_at, Broadcast.id,
                                              after, size)
            return Page(await self._progress(session, [row[0] for row in rows]), cursor)

    async def _progress(self, session: AsyncSession, broadcasts: list[Broadcast]) -> list[Progress]:
        counts: dict[tuple[uuid.UUID, str], int] = {}
        if broadcasts:
            found = await session.execute(
                select(BroadcastDelivery.broadcast_id, BroadcastDelivery.state, func.count())
                .where(BroadcastDelivery.broadcast_id.in_([b.id for b in broadcasts]))
                .group_by(BroadcastDelivery.broadcast_id, BroadcastDelivery.state))
            counts = {(broadcast_id, state): count for broadcast_id, state, count in found}
        return [Progress(b, counts.get((b.id, DELIVERED), 0), counts.get((b.id, FAILED), 0),
                         counts.get((b.id, PENDING), 0) + counts.get((b.id, SENDING), 0)) for b in broadcasts]


def checked_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Write the message to send.", field="text")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInput(f"A message is at most {MAX_TEXT} characters.", field="text")
    return value.strip()
