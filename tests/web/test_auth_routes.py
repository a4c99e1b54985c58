"""Login and registration over the real app on loopback: the platform keeps answering while
passwords are hashed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clawfleet.settings import Settings
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

PASSWORD = "correct horse battery"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Api]:
    runtime = MemoryRuntime()
    try:
        async with running_api(settings, runtime) as api:
            yield api
    finally:
        await runtime.close()


def _login(api: Api, email: str, password: str = PASSWORD):
    return api.call("POST", "/api/auth/login", {"email": email, "password": password})


async def test_healthz_answers_while_twenty_logins_hash_their_passwords(settings_for, sessions) -> None:
    async with serving(settings_for()) as api:
        await api.sign_up("ada@example.com")
        logins = [asyncio.create_task(_login(api, "ada@example.com")) for _ in range(20)]
        await asyncio.sleep(0.2)  # the logins have reached the server and are hashing
        started = time.monotonic()
        status, _ = await api.call("GET", "/healthz")
        waited = time.monotonic() - started
        still_hashing = sum(not login.done() for login in logins)
        answers = await asyncio.gather(*logins)
    assert status == 200
    assert [code for code, _ in answers] == [200] * 20
    assert still_hashing > 0  # /healthz was answered in the middle of the logins...
    assert waited < 1.0, f"/healthz took {waited:.2f} s"  # ...without waiting for them (a guard, not a speed test)
