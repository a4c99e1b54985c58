"""Shared fixtures, for every test folder. Database tests run twice: on SQLite and on the real
PostgreSQL server. Fixtures that bring up a real thing (an OpenClaw install, a Docker engine, the
bot's platform) are plugins below, and the tests that use them are marked for it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import Base
from db.sealing import KeyRing, generate_key
from tests.support.services import empty_database

ROOT = Path(__file__).resolve().parent.parent
# Every platform a test starts, in this process or a child, gives its model gateway a free
# port: several run at once, and the default port may be taken by a platform outside the tests.
os.environ.setdefault("CLAWFLEET_MODEL_GATEWAY_PORT", "0")
# The warm-up turn adds seconds to every start; the tests of it (tests/e2e/test_warm_up.py) and
# the benchmark turn it on, the others test everything else without it.
os.environ.setdefault("CLAWFLEET_WARM_UP", "false")

pytest_plugins = [
    "tests.support.platform_fixtures",  # the fake Bot API, settings over the test's database
    "tests.support.bot_fixtures",  # the bot's platform, its fake Bot API and a person's chat
    "tests.support.openclaw_fixtures",  # the real OpenClaw install
    "tests.support.docker_fixtures",  # the real Docker engine and the OpenClaw image on it
    "tests.support.browser",  # a real headless Chromium, its desktop and phone pages
    "tests.support.stripe_fixtures",  # localstripe and the fake Stripe front over it
]

# A test that uses one of these fixtures runs against that real thing: `-m "not gateway"` or
# `-m "not docker"` (or `-m "not browser"`) leaves those out on a machine without them.
REAL_PARTS = {"openclaw_install": ("gateway",), "openclaw_image": ("gateway", "docker"), "docker_engine": ("docker",),
              "browser": ("browser",)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = getattr(item, "fixturenames", ())
        for marker in {marker for fixture, markers in REAL_PARTS.items() if fixture in used for marker in markers}:
            item.add_marker(marker)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path_factory.mktemp("sqlite")) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database, emptied after each test."""
    yield create_session_factory(engine)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.from_encoded([generate_key()])


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The common umask 022, under which files are made readable by every local user."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)
