"""When each instance last used its model, as this process saw it: its model calls in flight and
when the last one ended. A call is the trace of a conversation (a message in, a reply out), so
"no call for a while" is the quiet moment the platform waits for before it disturbs a gateway.
Warm-up turns are the platform's own and are not activity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class ModelActivity:
    clock: Callable[[], float] = time.monotonic  # injectable for tests
    _in_flight: dict[uuid.UUID, int] = field(default_factory=dict)
    _ended: dict[uuid.UUID, float] = field(default_factory=dict)

    @contextmanager
    def call(self, instance_id: uuid.UUID) -> Iterator[None]:
        """Around one model call, from its request to its answer's last byte."""
        self._in_flight[instance_id] = self._in_flight.get(instance_id, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[instance_id] - 1
            if left:
                self._in_flight[instance_id] = left
            else:
                del self._in_flight[instance_id]
            self._ended[instance_id] = self.clock()

    def idle_for_s(self, instance_id: uuid.UUID) -> float | None:
        """Seconds since its last call ended; 0 while one is in flight; None when this process has
        seen none (since it started)."""
        if instance_id in self._in_flight:
            return 0.0
        ended = self._ended.get(instance_id)
        return None if ended is None else self.clock() - ended
