"""The record of who was kept out: bounded in rows, and written at most once a minute per id
(a flood costs no writes), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from accounts.refusals import Refusals
from db.models import AccessRefusal


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def _rows(sessions) -> list[AccessRefusal]:
    async with sessions() as session:
        return list(await session.scalars(select(AccessRefusal).order_by(AccessRefusal.telegram_user_id)))


async def test_one_id_is_written_once_a_minute_with_what_came_in_between(sessions) -> None:
    clock = Clock()
    refusals = Refusals(sessions, clock=clock)
    assert await refusals.record(4242, "eve") is True
    first = clock.now
    for _ in range(9):
        clock.now += timedelta(seconds=5)
        assert await refusals.record(4242, "eve") is False  # counted, not written
    [row] = await _rows(sessions)
    assert (row.count, row.first_seen_at, row.last_seen_at) == (1, first, first)

    clock.now = first + timedelta(minutes=1)
    assert await refusals.record(4242, "eve_renamed") is True
    [row] = await _rows(sessions)
    assert (row.count, row.last_seen_at, row.telegram_username) == (11, clock.now, "eve_renamed")
    assert row.first_seen_at == first


async def test_another_process_s_write_within_the_minute_is_respected(sessions) -> None:
    clock = Clock()
    await Refusals(sessions, clock=clock).record(4242, "eve")
    clock.now += timedelta(seconds=10)
    elsewhere = Refusals(sessions, clock=clock)  # a second replica, with nothing in memory
    assert await elsewhere.record(4242, "eve") is False
    assert [row.count for row in await _rows(sessions)] == [1]
    clock.now += timedelta(minutes=1)
    assert await elsewhere.record(4242, "eve") is True
    assert [row.count for row in await _rows(sessions)] == [3]


async def test_only_the_latest_rows_are_kept(sessions) -> None:
    clock = Clock()
    refusals = Refusals(sessions, capacity=3, clock=clock)
    for n in range(5):
        clock.now += timedelta(seconds=1)
        await refusals.record(1000 + n, f"person{n}")
    assert [row.telegram_user_id for row in await _rows(sessions)] == [1002, 1003, 1004]
    assert [row.telegram_username for row in await refusals.recent()] == ["person4", "person3", "person2"]
    clock.now += timedelta(minutes=1)
    await refusals.record(1002, "person2")  # heard again: now the newest, so another goes
    await refusals.record(1005, "person5")
    assert [row.telegram_user_id for row in await _rows(sessions)] == [1002, 1004, 1005]


def test_the_cli_lists_the_latest_refusals(tmp_path) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    from db.engine import create_engine, create_session_factory

    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path)}
    env.pop("CLAWFLEET_DATABASE_URL", None)

    def clawfleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert clawfleet("migrate").returncode == 0

    async def refuse() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}")
        clock = Clock()
        refusals = Refusals(create_session_factory(engine), clock=clock)
        await refusals.record(4242, "eve")
        clock.now += timedelta(minutes=5)
        await refusals.record(5151, None)
        await engine.dispose()

    asyncio.run(refuse())
    listed = clawfleet("refusals")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["5151\t-\t1\t2026-01-01 00:05\t2026-01-01 00:05",
                                          "4242\t@eve\t1\t2026-01-01 00:00\t2026-01-01 00:00"]
    assert clawfleet("refusals", "--limit", "1").stdout.splitlines()[0].startswith("5151\t")
    refused = clawfleet("refusals", "--limit", "0")
    assert refused.returncode == 1 and "--limit must be between 1 and 500" in refused.stderr
