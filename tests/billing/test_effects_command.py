"""`clawfleet billing effects`: what the outbox has not carried out, for the operator, run as the
command it is on a database of its own; `--retry` gives given-up effects another round."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from billing.outbox import enqueue
from db.engine import create_engine, create_session_factory
from db.models import OutboxEffect
from db.types import utcnow
from tests.support.cli import database_url, run_command


async def _on(tmp_path: Path, action):
    engine = create_engine(database_url(tmp_path))
    try:
        return await action(create_session_factory(engine))
    finally:
        await engine.dispose()


async def test_pending_and_given_up_effects_are_listed_and_can_be_retried(tmp_path):
    assert run_command(tmp_path, "migrate").returncode == 0
    empty = run_command(tmp_path, "billing", "effects")
    assert empty.returncode == 0 and empty.stdout == "" and "nothing pending" in empty.stderr

    async def queue(sessions):
        async with sessions() as session:
            enqueue(session, key="evt_1:suspend", kind="suspend", user_id=None)
            enqueue(session, key="evt_2:notify", kind="notify", user_id=None)
            await session.commit()
            stuck = await session.scalar(select(OutboxEffect).where(OutboxEffect.kind == "notify"))
            stuck.attempts, stuck.last_error, stuck.given_up_at = 30, "TelegramError: chat not found", utcnow()
            await session.commit()

    await _on(tmp_path, queue)
    listed = run_command(tmp_path, "billing", "effects")
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 2
    assert "\tsuspend\t0 attempts\tnext " in lines[0]
    assert "\tnotify\t30 attempts\tGIVEN UP\tTelegramError: chat not found" in lines[1]

    retried = run_command(tmp_path, "billing", "effects", "--retry")
    assert "GIVEN UP" not in retried.stdout and "\tnotify\t0 attempts\tnext " in retried.stdout

    async def due(sessions):
        async with sessions() as session:
            row = await session.scalar(select(OutboxEffect).where(OutboxEffect.kind == "notify"))
            return row.given_up_at, row.next_attempt_at

    given_up_at, next_attempt_at = await _on(tmp_path, due)
    assert given_up_at is None and next_attempt_at <= utcnow() + timedelta(seconds=1)
