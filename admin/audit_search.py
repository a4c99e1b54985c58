"""The audit log for the operator: filtered by who acted (the actor column, in part), what was
done (an action or its family: `instance.` finds every instance action), whose account, which
instance and when; paged newest first (admin.paging)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.paging import PAGE_SIZE, Page, contains, newest_first
from db.errors import InvalidInput, NotFound
from db.models import AuditLog, User

MAX_FILTER = 320


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    user: str = ""  # an email or an account id
    instance: str = ""  # an instance id
    since: str = ""  # an ISO date or date and time (UTC unless it says), inclusive
    until: str = ""  # exclusive; a date alone means the end of that day

    def is_empty(self) -> bool:
        return not any(vars(self).values())


@dataclass(frozen=True)
class AuditRow:
    entry: AuditLog
    user_email: str | None


class AuditSearch:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def search(self, wanted: AuditFilter, *, after: object = None, size: int = PAGE_SIZE) -> Page[AuditRow]:
        statement = select(AuditLog, User.email).outerjoin(User, User.id == AuditLog.user_id)
        if actor := _text(wanted.actor, "actor"):
            statement = statement.where(contains(AuditLog.actor, actor))
        if action := _text(wanted.action, "action"):
            statement = statement.where(AuditLog.action.startswith(action, autoescape=True) if action.endswith(".")
                                        else AuditLog.action == action)
        async with self.sessions() as session:
            if user := _text(wanted.user, "user"):
                statement = statement.where(AuditLog.user_id == await _user_id(session, user))
            if instance := _text(wanted.instance, "instance"):
                statement = statement.where(AuditLog.instance_id == _uuid(instance, "instance"))
            if since := _moment(wanted.since, "since", end_of_day=False):
                statement = statement.where(AuditLog.created_at >= since)
            if until := _moment(wanted.until, "until", end_of_day=True):
                statement = statement.where(AuditLog.created_at < until)
            rows, cursor = await newest_first(session, statement, AuditLog.created_at, AuditLog.id, after, size)
        return Page([AuditRow(*row) for row in rows], cursor)


def _text(value: object, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_FILTER or "\x00" in value:
        raise InvalidInput(f"The {field} filter is text of at most {MAX_FILTER} characters.", field=field)
    return value.strip()


async def _user_id(session: AsyncSession, text: str) -> uuid.UUID:
    if "@" not in text:
        return _uuid(text, "user")
    found = await session.scalar(select(User.id).where(User.email == text.lower()))
    if found is None:
        raise NotFound(f"No account has the email {text}.", field="user")
    return found


def _uuid(text: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(f"The {field} filter takes an email or an id like 0b6f3c1e-7a52-4d8e-9c41-2f5e8a7d6b90."
                           if field == "user" else f"The {field} filter takes an id like "
                           "0b6f3c1e-7a52-4d8e-9c41-2f5e8a7d6b90.", field=field) from None


def _moment(value: object, field: str, *, end_of_day: bool) -> datetime | None:
    text = _text(value, field)
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), timezone.utc)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"The {field} filter is a date like 2026-05-01 or a time like 2026-05-01T14:30.",
                           field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
