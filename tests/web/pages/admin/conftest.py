"""The admin section's pages over in-memory gateways, with a notifier that keeps what owners are
told, and a signed-in admin (browsers come from tests/web/pages/conftest.py's browser_for)."""

from __future__ import annotations

import pytest

from tests.support.api_client import running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import RecordingNotifier
from tests.web.pages.owned_instances import signed_up


@pytest.fixture
def told() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def site(settings_for, sessions, told):
    runtime = MemoryRuntime()
    try:
        async with running_api(settings_for(), runtime, notifier=told) as api:
            yield api
    finally:
        await runtime.close()


@pytest.fixture
async def admin(site, browser_for):
    """A signed-in admin's browser and account (granted as `clawfleet admin grant` does)."""
    person, user = await signed_up(browser_for, "root@example.com")
    await site.platform.admin.operators.grant(user.email, actor="cli:test")
    return person, user
