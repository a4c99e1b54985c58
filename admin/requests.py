"""Suspensions asked for at the command line, where no gateway can be stopped (the running
platform holds them): queued on the outbox (billing/outbox.py) in the asking transaction, and
carried out by the platform's outbox worker through admin.suspensions, as the dashboard's are.
Each handler is idempotent: what is suspended or resumed already counts as done."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.suspensions import Suspensions
from billing.outbox import Handler, enqueue
from db.errors import Conflict
from db.models import OutboxEffect

SUSPEND, RESUME = "admin_suspend", "admin_resume"


async def queue(sessions: async_sessionmaker[AsyncSession], kind: str, *, actor: str,
                instance_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None, reason: str = "") -> str:
    """Queue a suspend or resume of one instance or of all of a user's; the effect's key."""
    key = f"{kind}:{instance_id or user_id}:{uuid.uuid4().hex}"
    payload = {"actor": actor, "reason": reason, "instance_id": str(instance_id) if instance_id else None}
    async with sessions() as session:
        enqueue(session, key=key, kind=kind, user_id=user_id, payload=payload)
        await session.commit()
    return key


class AdminRequests:
    def __init__(self, suspensions: Suspensions) -> None:
        self.suspensions = suspensions

    def table(self) -> dict[str, Handler]:
        return {SUSPEND: self.suspend, RESUME: self.resume}

    async def suspend(self, effect: OutboxEffect) -> None:
        payload = effect.payload
        await _done_if_already(
            self.suspensions.suspend(payload["instance_id"], actor=payload["actor"], reason=payload["reason"])
            if payload.get("instance_id") else
            self.suspensions.suspend_user(effect.user_id, actor=payload["actor"], reason=payload["reason"]))

    async def resume(self, effect: OutboxEffect) -> None:
        payload = effect.payload
        await _done_if_already(
            self.suspensions.resume(payload["instance_id"], actor=payload["actor"])
            if payload.get("instance_id") else self.suspensions.resume_user(effect.user_id, actor=payload["actor"]))


async def _done_if_already(work) -> None:
    """A refusal about the instance's state (suspended already, not suspended, being deleted) is
    what was asked; one about a busy instance is retried by the outbox."""
    try:
        await work
    except Conflict as exc:
        if exc.field != "instance":
            raise
