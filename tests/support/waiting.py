"""Waiting in tests for what the platform does in the background, and hearing what it says."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import aiohttp


async def eventually(check: Callable[[], object], timeout: float = 10, what: Callable[[], str] = str) -> None:
    """Until `check()` (sync or async) is truthy; after `timeout` seconds, fail saying `what()`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s. {what()}")
        await asyncio.sleep(0.05)


async def gateway_ready(endpoint_url: str) -> bool:
    """Whether the gateway at endpoint_url answers /readyz with 200 now."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{endpoint_url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


class RecordingNotifier:
    """The Notifier contract, keeping what the platform tells each owner."""

    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, str]] = []
        self.offers: list[tuple[uuid.UUID, tuple]] = []  # (owner, the offers under a notice)
        self.followed: list[tuple[uuid.UUID, uuid.UUID, str]] = []  # (owner, instance, title)

    async def notify(self, user_id: uuid.UUID, text: str, offers=()) -> None:
        self.sent.append((user_id, text))
        if offers:
            self.offers.append((user_id, tuple(offers)))

    async def deliver(self, user_id: uuid.UUID, text: str) -> str | None:
        self.sent.append((user_id, text))
        return None

    async def follow(self, user_id: uuid.UUID, instance_id: uuid.UUID, title: str) -> None:
        self.followed.append((user_id, instance_id, title))
