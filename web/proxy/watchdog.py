"""Ends a proxied exchange that has gone quiet or whose client has gone.

One timer per exchange that re-arms itself, instead of a new timeout per chunk: `touch()` on
every byte moved only notes the time. aiohttp does not tell a handler that its client hung up
(unless the server cancels handlers), so the same tick looks at the client's transport.
"""

from __future__ import annotations

import asyncio
from enum import Enum

from aiohttp import web

MAX_TICK_S = 1.0  # how late a hung-up client is noticed at most


class Stall(Enum):
    IDLE = "idle"
    CLIENT_GONE = "client gone"


class Stalled(Exception):
    def __init__(self, why: Stall) -> None:
        super().__init__(why.value)
        self.why = why


class Watchdog:
    """A context for the current task: raises Stalled out of it when it fires."""

    def __init__(self, idle_s: float, request: web.BaseRequest) -> None:
        self._idle_s = idle_s
        self._tick_s = min(MAX_TICK_S, idle_s / 2)
        self._request = request
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._paused = False
        self._cancelling = 0
        self.fired: Stall | None = None

    def touch(self) -> None:
        self._last = self._loop.time()

    def pause(self) -> None:
        """Quiet time no longer counts (waiting for the gateway's answer has its own deadline)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self.touch()

    def __enter__(self) -> Watchdog:
        self._task = asyncio.current_task()
        self._cancelling = self._task.cancelling()
        self.touch()
        self._handle = self._loop.call_later(self._tick_s, self._tick)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.fired is not None and kind is asyncio.CancelledError and self._task.uncancel() <= self._cancelling:
            raise Stalled(self.fired) from None

    def _tick(self) -> None:
        if self._request.transport is None:
            self._fire(Stall.CLIENT_GONE)
        elif not self._paused and self._loop.time() - self._last >= self._idle_s:
            self._fire(Stall.IDLE)
        else:
            self._handle = self._loop.call_later(self._tick_s, self._tick)

    def _fire(self, why: Stall) -> None:
        self.fired = why
        self._handle = None
        self._task.cancel()
