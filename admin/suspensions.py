"""An operator's suspension of an instance, or of all of a user's, kept apart from billing's.

Both end in the one status `suspended` (the gateway stopped, its data kept), but an operator's
is recorded on the row (`admin_suspended_at`, and the status it had): billing's resume
(InstanceService.start_paid) leaves such an instance alone, billing's suspension of one already
suspended changes nothing, and the retention worker never deletes it. An operator's resume
clears the mark and brings back what the instance had, unless billing still holds it: then it
stays `suspended`, waiting for a subscription as billing's own suspensions do. The owner is told
in chat either way (the Notifier), and every step is in the audit log with the acting admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.errors import CapacityExceeded, Conflict, InvalidInput, LimitReached, NotFound
from db.models import Instance, User
from db.status import Status
from db.types import utcnow
from provisioner.notify import Notifier
from provisioner.service import InstanceService

MAX_REASON = 500
# What the instance had that a resume starts again (a billing suspension lifted meanwhile included).
STARTS_AGAIN = frozenset({Status.PROVISIONING, Status.RUNNING, Status.HIBERNATED, Status.SUSPENDED,
                          Status.AWAITING_PAYMENT})
WAITS_FOR_PAYMENT = "Your assistant waits for a subscription: choose a plan (/billing) to start it again."


@dataclass(frozen=True)
class Outcome:
    """What became of one instance: its status now (or on its way), in words for the admin."""

    instance_id: uuid.UUID
    status: str
    message: str


class Suspensions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], instances: InstanceService,
                 notifier: Notifier) -> None:
        self.sessions = sessions
        self.instances = instances
        self.manager = instances.manager
        self.notifier = notifier

    # -- one instance ---------------------------------------------------------------------
    async def suspend(self, instance_id: object, *, actor: str, reason: object = "") -> Outcome:
        row, reason = await self._instance(instance_id), _reason(reason)
        outcome = await self._suspend(row, actor, reason)
        await self.notifier.notify(row.user_id, _suspended_notice([row], reason))
        return outcome

    async def resume(self, instance_id: object, *, actor: str) -> Outcome:
        row = await self._instance(instance_id)
        outcome = await self._resume(row, actor)
        await self.notifier.notify(row.user_id, _resumed_notice(row, outcome))
        return outcome

    # -- all of a user's ------------------------------------------------------------------
    async def suspend_user(self, user_id: object, *, actor: str, reason: object = "") -> list[Outcome]:
        """Every instance of the user's not suspended by an operator yet; the owner told once."""
        reason = _reason(reason)
        user, rows = await self._owned(user_id)
        rows = [row for row in rows if row.admin_suspended_at is None and row.status != Status.DELETING]
        outcomes = [await self._suspend(row, actor, reason) for row in rows]
        await self._record_user(user, "user.admin_suspend", actor, {"instances": len(outcomes), "reason": reason})
        if outcomes:
            await self.notifier.notify(user.id, _suspended_notice(rows, reason))
        return outcomes

    async def resume_user(self, user_id: object, *, actor: str) -> list[Outcome]:
        user, rows = await self._owned(user_id)
        outcomes = []
        for row in (row for row in rows if row.admin_suspended_at is not None):
            outcome = await self._resume(row, actor)
            outcomes.append(outcome)
            await self.notifier.notify(user.id, _resumed_notice(row, outcome))
        await self._record_user(user, "user.admin_resume", actor, {"instances": len(outcomes)})
        return outcomes

    # -- the steps --------------------------------------------------------------------------
    async def _suspend(self, row: Instance, actor: str, reason: str) -> Outcome:
        if row.admin_suspended_at is not None:
            raise Conflict("This instance is suspended by an operator already.", field="instance")
        if row.status == Status.DELETING:
            raise Conflict("This instance is being deleted.", field="instance")
        await self.manager.suspend(row.id, f"Suspended by the platform's operator: {reason}")  # Conflict when busy
        await self._mark(row.id, held_from=row.status)
        await self._record(row, "instance.admin_suspend", actor, {"was": row.status, "reason": reason})
        return Outcome(row.id, Status.SUSPENDED, "suspended: its gateway is stopping")

    async def _resume(self, row: Instance, actor: str) -> Outcome:
        if row.admin_suspended_at is None:
            raise Conflict("This instance is not suspended by an operator.", field="instance")
        was = row.admin_suspended_from or Status.STOPPED
        await self._mark(row.id, held_from=None)
        try:
            outcome = await self._bring_back(row, was)
        except Conflict:
            await self._mark(row.id, held_from=was)  # busy: still the operator's, try again later
            raise
        await self._record(row, "instance.admin_resume", actor, {"was": was, "now": outcome.status})
        return outcome

    async def _bring_back(self, row: Instance, was: str) -> Outcome:
        async with self.sessions() as session:
            owner = await session.get(User, row.user_id)
        if (await self.instances.entitlements.allowance(owner)).payment_required:
            async with self.sessions() as session:  # billing's hold now: its own resume starts it once paid
                await session.execute(update(Instance).where(Instance.id == row.id)
                                      .values(status_reason=WAITS_FOR_PAYMENT).execution_options(synchronize_session=False))
                await session.commit()
            return Outcome(row.id, Status.SUSPENDED, "still suspended: no subscription pays for it (billing)")
        if was in STARTS_AGAIN:
            try:
                await self.manager.deploy(row.id, check=await self.instances.room_to_start(owner))
                return Outcome(row.id, Status.PROVISIONING, "starting again")
            except (LimitReached, CapacityExceeded) as exc:
                await self.manager.stop(row.id)
                return Outcome(row.id, Status.STOPPED, f"stopped, as it cannot start now: {exc.message}")
        await self.manager.stop(row.id)
        return Outcome(row.id, Status.STOPPED, f"stopped, as it was ({was})")

    async def _mark(self, instance_id: uuid.UUID, *, held_from: str | None) -> None:
        async with self.sessions() as session:
            await session.execute(update(Instance).where(Instance.id == instance_id).values(
                admin_suspended_at=utcnow() if held_from else None, admin_suspended_from=held_from)
                .execution_options(synchronize_session=False))
            await session.commit()

    async def _record(self, row: Instance, action: str, actor: str, details: dict) -> None:
        async with self.sessions() as session:
            audit.record(session, actor=actor, action=action, user_id=row.user_id, instance_id=row.id, details=details)
            await session.commit()

    async def _record_user(self, user: User, action: str, actor: str, details: dict) -> None:
        async with self.sessions() as session:
            audit.record(session, actor=actor, action=action, user_id=user.id, details=details)
            await session.commit()

    async def _instance(self, instance_id: object) -> Instance:
        key = as_uuid(instance_id, "instance")
        async with self.sessions() as session:
            row = await session.get(Instance, key)
        if row is None:
            raise NotFound("No instance has this id.", field="instance")
        return row

    async def _owned(self, user_id: object) -> tuple[User, list[Instance]]:
        key = as_uuid(user_id, "user")
        async with self.sessions() as session:
            user = await session.get(User, key)
            if user is None:
                raise NotFound("No user has this id.", field="user")
            rows = list(await session.scalars(select(Instance).where(Instance.user_id == key)
                                              .order_by(Instance.created_at)))
        return user, rows


def as_uuid(value: object, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise InvalidInput(f"A {field} id looks like 0b6f3c1e-7a52-4d8e-9c41-2f5e8a7d6b90.", field=field) from None


def _reason(value: object) -> str:
    if value is None or value == "":
        return "no reason given"
    if not isinstance(value, str) or len(value.strip()) > MAX_REASON or "\x00" in value:
        raise InvalidInput(f"The reason is text of at most {MAX_REASON} characters.", field="reason")
    return value.strip() or "no reason given"


def _name(row: Instance) -> str:
    return f"@{row.telegram_bot_username}" if row.telegram_bot_username else f"assistant {row.subdomain}"


def _suspended_notice(rows: list[Instance], reason: str) -> str:
    names = ", ".join(_name(row) for row in rows)
    return (f"The platform's operator suspended {names} ({reason}). It is stopped and its data is kept; "
            "it comes back when the operator resumes it.")


def _resumed_notice(row: Instance, outcome: Outcome) -> str:
    then = {Status.PROVISIONING: "It is starting again.",
            Status.STOPPED: "It is stopped: start it when you like (/status).",
            Status.SUSPENDED: WAITS_FOR_PAYMENT}[outcome.status]
    return f"The platform's operator resumed {_name(row)}. {then}"

