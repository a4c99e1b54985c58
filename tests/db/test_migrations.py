"""Migrations apply on empty databases of both kinds and agree with the models."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from db.engine import create_engine
from db.migrate import current_revision, head_revision, pending_model_changes, upgrade
from db.models import Base
from tests.support.services import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request, tmp_path):
    async with empty_database(request.param, tmp_path) as url:
        yield url


async def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_database_url) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        assert await pending_model_changes(engine) == []
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        await upgrade(engine)  # applying again is a no-op
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back(empty_database_url) -> None:
    from alembic import command

    from db.migrate import alembic_config

    engine = create_engine(empty_database_url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables <= {"alembic_version"}
        await upgrade(engine)
        assert await pending_model_changes(engine) == []
    finally:
        await engine.dispose()


def test_cli_migrate_then_check(tmp_path) -> None:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path)}
    env.pop("CLAWFLEET_DATABASE_URL", None)

    def clawfleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    before = clawfleet("migrate", "--check")
    assert before.returncode == 1  # an empty database lacks every table
    migrated = clawfleet("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "is up to date" in migrated.stdout
    after = clawfleet("migrate", "--check")
    assert after.returncode == 0
    assert "database matches the models" in after.stdout


def test_cli_explains_an_unreachable_database(tmp_path) -> None:
    env = {**os.environ, "CLAWFLEET_DATABASE_URL": "postgresql+asyncpg://clawfleet:hunter2@127.0.0.1:9/nowhere"}
    result = subprocess.run([sys.executable, "-m", "clawfleet.cli", "migrate"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clawfleet: cannot use the database at")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
