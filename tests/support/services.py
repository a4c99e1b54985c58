"""The real services the tests talk to, and what happens when one is missing: a skip with the
reason on a developer's machine, a failure under CI=true, where nothing may skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from db.engine import create_engine

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


@asynccontextmanager
async def empty_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of `kind` ("sqlite" in `directory`, or "postgresql" on
    the test server), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'clawfleet.db'}"
        return
    server = await reachable_postgres()
    try:
        yield await server.create_database()
    finally:
        await server.drop_all()
