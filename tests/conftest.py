"""Shared fixtures. Database tests run twice: on SQLite and on the real PostgreSQL server.

A missing service skips its tests with the reason on a developer's machine, and fails them
under CI=true, where nothing may skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import Base
from db.sealing import KeyRing, generate_key

pytest_plugins = ["tests.bot_fixtures"]  # the bot's tests share one platform-with-bot setup

POSTGRES_URL = os.environ.get("CLAWFLEET_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"required service missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


class PostgresServer:
    """Makes throwaway databases on the test server, so runs never see each other's rows."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    async def create_database(self) -> str:
        name = f"clawfleet_test_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        for name in self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        engine = create_engine(self.admin_url)
        try:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(sql))
        finally:
            await engine.dispose()


async def reachable_postgres() -> PostgresServer:
    server = PostgresServer(POSTGRES_URL)
    try:
        await server._admin("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not usable
        service_missing(f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(exc).__name__}: {exc})")
    return server


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'clawfleet.db'}"
        return
    server = await reachable_postgres()
    try:
        yield await server.create_database()
    finally:
        await server.drop_all()


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
    return Path(__file__).resolve().parent.parent
