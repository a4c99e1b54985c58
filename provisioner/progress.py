"""Deploy progress: one event shape for the bot, the SSE stream and the dashboard.

Late subscribers get the events so far replayed, then live ones; a stream ends after the
event marked done or failed. Kept in memory per process: progress is about the action this
process is performing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ProgressEvent:
    seq: int
    step: str
    message: str
    elapsed_ms: int
    done: bool = False
    failed: bool = False
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.done or self.failed

    def as_dict(self) -> dict:
        data = asdict(self)
        if data["reason"] is None:
            del data["reason"]
        return data


class ProgressLog:
    """The events of one action on one instance."""

    def __init__(self, owner_id: uuid.UUID | None = None) -> None:
        self.owner_id = owner_id  # whose instance: the log outlives a deleted instance's row
        self.events: list[ProgressEvent] = []
        self._started = time.monotonic()
        self._changed = asyncio.Condition()

    async def emit(self, step: str, message: str, *, done: bool = False, failed: bool = False,
                   reason: str | None = None) -> ProgressEvent:
        event = ProgressEvent(
            seq=len(self.events) + 1,
            step=step,
            message=message,
            elapsed_ms=int((time.monotonic() - self._started) * 1000),
            done=done,
            failed=failed,
            reason=reason,
        )
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return event

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].final

    async def follow(self) -> AsyncIterator[ProgressEvent]:
        sent = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.events) > sent)
                fresh = self.events[sent:]
            for event in fresh:
                yield event
                if event.final:
                    return
            sent += len(fresh)


class ProgressHub:
    """The latest action's progress log for each instance."""

    def __init__(self) -> None:
        self._logs: dict[uuid.UUID, ProgressLog] = {}

    def begin(self, instance_id: uuid.UUID, owner_id: uuid.UUID | None = None) -> ProgressLog:
        log = ProgressLog(owner_id)
        self._logs[instance_id] = log
        return log

    def current(self, instance_id: uuid.UUID) -> ProgressLog | None:
        return self._logs.get(instance_id)
