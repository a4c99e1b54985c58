"""Deploy progress: one event shape for the bot, the SSE stream and the dashboard.

Late subscribers get the events so far replayed, then live ones; a stream ends after the
event marked done or failed. Events are stored (db.models.ProgressRecord) as they are
emitted, so every platform process serves every stream: the process doing the action wakes
its own listeners at once, the others notice new rows by polling. Only the latest action's
events are kept per instance.

An action whose process died never emits its final event. Once the instance's lease has
lapsed while the last stored event is not final, followers end the stream with an
"interrupted" event of their own (except in the action's own process while it still runs
there: a lease that lapsed under a stalled machine is not a dead holder). It is derived, not stored: every reader derives the same one
from the same rows and lease, readers never write, and it vanishes by itself when the
reconciler's next action on the instance replaces the interrupted one's rows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, ProgressRecord
from db.types import utcnow

POLL_S = 0.5  # how often a follower looks for rows another process wrote
INTERRUPTED = ("The platform stopped while this was in progress; "
               "the reconciler will pick it up again.")


@dataclass(frozen=True)
class ProgressEvent:
    seq: int
    step: str
    message: str
    elapsed_ms: int
    done: bool = False
    failed: bool = False
    reason: str | None = None
    action_seq: int = field(default=0, compare=False)  # which action of the instance; not in the shape

    @property
    def final(self) -> bool:
        return self.done or self.failed

    @property
    def event_id(self) -> str:
        """The SSE id: a client that reconnects with it resumes after this event."""
        return f"{self.action_seq}:{self.seq}"

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["action_seq"]
        if data["reason"] is None:
            del data["reason"]
        return data


def resume_after(last_event_id: str | None, action_seq: int) -> int:
    """The seq a reconnecting client (SSE Last-Event-ID) has seen of the action: 0 unless its
    last event was of this very action."""
    action, _, seq = (last_event_id or "").partition(":")
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and few enough for a BIGINT
    if action != str(action_seq) or not (seq.isascii() and seq.isdigit()) or len(seq) > 18:
        return 0
    return int(seq)


@dataclass(frozen=True)
class LatestAction:
    action_seq: int
    owner_id: uuid.UUID | None


class ProgressLog:
    """The events of one action on one instance; the action's process is its only writer."""

    def __init__(self, hub: ProgressHub, instance_id: uuid.UUID, action_seq: int,
                 owner_id: uuid.UUID | None) -> None:
        self.hub = hub
        self.instance_id = instance_id
        self.action_seq = action_seq
        self.owner_id = owner_id  # whose instance: the events outlive a deleted instance's row
        self.events: list[ProgressEvent] = []
        self._started = time.monotonic()

    def close(self) -> None:
        """The action is over here (its final event stored, or its task ended without one)."""
        self.hub._live.discard((self.instance_id, self.action_seq))

    async def emit(self, step: str, message: str, *, done: bool = False, failed: bool = False,
                   reason: str | None = None,
                   alongside: Callable[[AsyncSession], Awaitable[Any]] | None = None) -> ProgressEvent:
        """Store the event, then wake this process's followers. `alongside` writes in the same
        transaction (the manager frees the lease with the final event: a reader never sees the
        lease free while the final event is missing, unless the holder died)."""
        event = ProgressEvent(
            seq=len(self.events) + 1,
            step=step,
            message=message,
            elapsed_ms=int((time.monotonic() - self._started) * 1000),
            done=done,
            failed=failed,
            reason=reason,
            action_seq=self.action_seq,
        )
        async with self.hub.sessions() as session:
            session.add(_record(self.instance_id, self.owner_id, event))
            if alongside is not None:
                await alongside(session)
            await session.commit()
        self.events.append(event)
        if event.final:
            self.close()
        self.hub.wake(self.instance_id)
        return event

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].final

    def follow(self) -> AsyncIterator[ProgressEvent]:
        return self.hub.follow(self.instance_id, self.action_seq)


class ProgressHub:
    """Each instance's latest action: begun here, followed from the stored rows.

    `gone_grace_s`: how long a follower waits for the final event once the instance row is
    gone (a delete removes the row just before its final event) before it calls the action
    interrupted."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, poll_s: float = POLL_S,
                 gone_grace_s: float = 30) -> None:
        self.sessions = sessions
        self.poll_s = poll_s
        self.gone_grace_s = gone_grace_s
        self._signals: weakref.WeakValueDictionary[uuid.UUID, asyncio.Event] = weakref.WeakValueDictionary()
        self._live: set[tuple[uuid.UUID, int]] = set()  # actions begun here and not yet over

    async def begin(self, instance_id: uuid.UUID, owner_id: uuid.UUID | None = None) -> ProgressLog:
        """A new action (its caller holds the instance's lease): the older action's rows go."""
        async with self.sessions() as session:
            last = await session.scalar(
                select(func.max(ProgressRecord.action_seq)).where(ProgressRecord.instance_id == instance_id)
            )
            action_seq = (last or 0) + 1
            await session.execute(delete(ProgressRecord).where(ProgressRecord.instance_id == instance_id))
            opening = ProgressEvent(seq=0, step="begin", message="", elapsed_ms=0, action_seq=action_seq)
            session.add(_record(instance_id, owner_id, opening))
            await session.commit()
        self._live.add((instance_id, action_seq))
        return ProgressLog(self, instance_id, action_seq, owner_id)

    async def latest(self, instance_id: uuid.UUID) -> LatestAction | None:
        """The instance's latest recorded action, or None when none is."""
        async with self.sessions() as session:
            found = (await session.execute(
                select(ProgressRecord.action_seq, ProgressRecord.owner_id)
                .where(ProgressRecord.instance_id == instance_id, ProgressRecord.seq == 0)
                .order_by(ProgressRecord.action_seq.desc()).limit(1)
            )).first()
        return LatestAction(found.action_seq, found.owner_id) if found is not None else None

    async def follow(self, instance_id: uuid.UUID, action_seq: int, *, after: int = 0) -> AsyncIterator[ProgressEvent]:
        """The action's events after seq `after`, then live ones, up to its final event."""
        sent, elapsed_ms, gone_since = after, 0, None
        while True:
            signal = self._signal(instance_id)  # taken before reading: no emit slips between
            lease, records = await self._read(instance_id, action_seq)
            for record in records:
                if record.seq > sent:
                    event = _event(record)
                    yield event
                    if event.final:
                        return
                    sent = record.seq
            if records:
                if records[-1].done or records[-1].failed:
                    return  # resumed after the final event: nothing more comes
                sent, elapsed_ms = max(sent, records[-1].seq), records[-1].elapsed_ms
            gone_since = (gone_since or time.monotonic()) if lease is None else None
            gone_for_s = time.monotonic() - gone_since if gone_since is not None else 0.0
            if (instance_id, action_seq) not in self._live and _lapsed(lease, records, gone_for_s,
                                                                           self.gone_grace_s):
                yield ProgressEvent(seq=sent + 1, step="interrupted", message=INTERRUPTED, elapsed_ms=elapsed_ms,
                                    failed=True, reason=INTERRUPTED, action_seq=action_seq)
                return
            try:
                await asyncio.wait_for(signal.wait(), self.poll_s)
            except TimeoutError:
                pass

    async def stored(self, instance_id: uuid.UUID, action_seq: int) -> tuple[list[ProgressEvent], bool]:
        """The action's events stored so far, without waiting for more, and whether it is over:
        what `follow` would yield at once (its derived interrupted end included)."""
        lease, records = await self._read(instance_id, action_seq)
        events = [_event(record) for record in records if record.seq > 0]
        if events and events[-1].final:
            return events, True
        if (lease is not None and (instance_id, action_seq) not in self._live
                and _lapsed(lease, records, 0.0, self.gone_grace_s)):
            last = events[-1] if events else None
            events.append(ProgressEvent(seq=(last.seq if last else 0) + 1, step="interrupted", message=INTERRUPTED,
                                        elapsed_ms=last.elapsed_ms if last else 0, failed=True, reason=INTERRUPTED,
                                        action_seq=action_seq))
            return events, True
        return events, False

    def wake(self, instance_id: uuid.UUID) -> None:
        """Wake this process's followers of the instance: something was stored."""
        signal = self._signals.pop(instance_id, None)
        if signal is not None:
            signal.set()

    def _signal(self, instance_id: uuid.UUID) -> asyncio.Event:
        signal = self._signals.get(instance_id)
        if signal is None:
            signal = self._signals[instance_id] = asyncio.Event()
        return signal

    async def _read(self, instance_id: uuid.UUID, action_seq: int) -> tuple[Any, list[ProgressRecord]]:
        """The instance's lease (None: no row), then the action's rows. In this order: the final
        event commits with the lease's release, so a free lease read first means the rows read
        next hold that event if it was ever written."""
        async with self.sessions() as session:
            lease = (await session.execute(
                select(Instance.lease_holder, Instance.lease_expires_at).where(Instance.id == instance_id)
            )).first()
            records = list(await session.scalars(
                select(ProgressRecord)
                .where(ProgressRecord.instance_id == instance_id, ProgressRecord.action_seq == action_seq)
                .order_by(ProgressRecord.seq)
            ))
        return lease, records


def _lapsed(lease: Any, records: Sequence[ProgressRecord], gone_for_s: float, gone_grace_s: float) -> bool:
    """True when the action's final event can no longer come: its rows were replaced by a newer
    action's, the instance row is gone for longer than the grace, or nobody holds a live lease."""
    if not records:
        return True
    if lease is None:
        return gone_for_s >= gone_grace_s
    return lease.lease_holder is None or lease.lease_expires_at is None or lease.lease_expires_at <= utcnow()


def _record(instance_id: uuid.UUID, owner_id: uuid.UUID | None, event: ProgressEvent) -> ProgressRecord:
    return ProgressRecord(instance_id=instance_id, owner_id=owner_id, action_seq=event.action_seq, seq=event.seq,
                          step=event.step, message=event.message, elapsed_ms=event.elapsed_ms, done=event.done,
                          failed=event.failed, reason=event.reason)


def _event(record: ProgressRecord) -> ProgressEvent:
    return ProgressEvent(seq=record.seq, step=record.step, message=record.message, elapsed_ms=record.elapsed_ms,
                         done=record.done, failed=record.failed, reason=record.reason,
                         action_seq=record.action_seq)
