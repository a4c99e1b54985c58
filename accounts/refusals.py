"""The record of who was kept out from Telegram, so the operator can see who asked: one row per
Telegram id, with how often and when first and last; never an account. Bounded both ways: at most
`capacity` rows (the longest quiet go first), and at most one write per id a minute (refusals in
between are counted in memory and added by that id's next write), so a flood costs no writes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AccessRefusal
from db.types import utcnow

CAPACITY = 500
WRITE_EVERY = timedelta(minutes=1)


@dataclass
class _Unwritten:
    since: datetime  # when this id's row was last written (by any process)
    count: int = 0  # refusals since, not in the row yet


class Refusals:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, capacity: int = CAPACITY,
                 write_every: timedelta = WRITE_EVERY, clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.capacity = capacity
        self.write_every = write_every
        self.clock = clock
        self._recent: OrderedDict[int, _Unwritten] = OrderedDict()  # at most `capacity` ids

    async def record(self, telegram_user_id: int, username: str | None) -> bool:
        """Count one refusal of this id; True when it is the first this minute (the row was written)."""
        now = self.clock()
        recent = self._recent.pop(telegram_user_id, None)
        written = False
        if recent is not None and now - recent.since < self.write_every:
            recent.count += 1
        else:
            count = 1 + (recent.count if recent else 0)
            written = await self._write(telegram_user_id, username, count, now)
            recent = _Unwritten(now) if written else _Unwritten(now, count)
        self._recent[telegram_user_id] = recent
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)
        return written

    async def recent(self, limit: int = 100) -> list[AccessRefusal]:
        """The latest refusals, newest first."""
        async with self.sessions() as session:
            return list(await session.scalars(
                select(AccessRefusal).order_by(AccessRefusal.last_seen_at.desc()).limit(limit)))

    async def _write(self, telegram_user_id: int, username: str | None, count: int, now: datetime) -> bool:
        """Add `count` refusals to the id's row; False when another process wrote it within the minute."""
        async with self.sessions() as session:
            updated = await session.execute(
                update(AccessRefusal)
                .where(AccessRefusal.telegram_user_id == telegram_user_id,
                       AccessRefusal.last_seen_at <= now - self.write_every)
                .values(count=AccessRefusal.count + count, last_seen_at=now, telegram_username=username)
                .execution_options(synchronize_session=False))
            if updated.rowcount == 0:
                session.add(AccessRefusal(telegram_user_id=telegram_user_id, telegram_username=username,
                                          count=count, first_seen_at=now, last_seen_at=now))
                try:
                    await session.flush()
                except IntegrityError:  # the row is there, written within the minute
                    return False
                await session.execute(delete(AccessRefusal).where(AccessRefusal.id.in_(
                    select(AccessRefusal.id).order_by(AccessRefusal.last_seen_at.desc(), AccessRefusal.id)
                    .offset(self.capacity).scalar_subquery())))
            await session.commit()
        return True
