"""How many requests and WebSockets each upstream has open through the proxy, and the cap on it:
one busy instance must not take every connection the platform has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Full(Exception):
    """The upstream already has as many connections as it may."""


class ConnectionCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open_count(self, key: str) -> int:
        return self._open.get(key, 0)

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        count = self._open.get(key, 0)
        if count >= self.limit:
            raise Full(key)
        self._open[key] = count + 1
        try:
            yield
        finally:
            remaining = self._open[key] - 1
            if remaining:
                self._open[key] = remaining
            else:  # keys come and go with instances: keep only the busy ones
                del self._open[key]
