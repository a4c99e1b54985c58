"""All users and all instances, for the admin section and `clawfleet admin users|instances`:
searched and paged newest first (admin.paging), each row with what an operator looks for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.paging import PAGE_SIZE, Page, contains, newest_first
from db.errors import InvalidInput
from db.models import Instance, Subscription, User
from db.status import Status

MAX_QUERY = 200


@dataclass(frozen=True)
class UserRow:
    user: User
    instances: int
    plan: str | None  # of the user's latest subscription (billing on); None: none
    subscription: str | None  # Stripe's status of it: active, past_due, canceled…


@dataclass(frozen=True)
class InstanceRow:
    instance: Instance
    owner_email: str | None
    owner_telegram_id: int | None


class Directory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def users(self, query: object = "", *, after: object = None, size: int = PAGE_SIZE) -> Page[UserRow]:
        """By email, Telegram username or id, or account id."""
        text = _query(query)
        count = select(func.count()).where(Instance.user_id == User.id).scalar_subquery()
        latest = select(Subscription).where(Subscription.user_id == User.id) \
            .order_by(Subscription.created_at.desc()).limit(1)
        plan = latest.with_only_columns(Subscription.plan).scalar_subquery()
        state = latest.with_only_columns(Subscription.status).scalar_subquery()
        statement = select(User, count, plan, state)
        if text:
            matches = [contains(User.email, text), contains(User.telegram_username, text.lstrip("@"))]
            if text.isdigit() and len(text) <= 19:
                matches.append(User.telegram_user_id == int(text))
            if (as_id := _uuid(text)) is not None:
                matches.append(User.id == as_id)
            statement = statement.where(or_(*matches))
        return await self._page(statement, User, UserRow, after, size)

    async def instances(self, query: object = "", *, status: object = "", owner: uuid.UUID | None = None,
                        after: object = None, size: int = PAGE_SIZE) -> Page[InstanceRow]:
        """By subdomain, bot username, owner email or instance id; of one status; of one owner."""
        text = _query(query)
        statement = select(Instance, User.email, User.telegram_user_id).join(User, User.id == Instance.user_id)
        if status not in (None, ""):
            if status not in set(Status):
                raise InvalidInput(f"A status is one of: {', '.join(Status)}.", field="status")
            statement = statement.where(Instance.status == status)
        if owner is not None:
            statement = statement.where(Instance.user_id == owner)
        if text:
            matches = [contains(Instance.subdomain, text), contains(Instance.telegram_bot_username, text.lstrip("@")),
                       contains(User.email, text)]
            if (as_id := _uuid(text)) is not None:
                matches.append(Instance.id == as_id)
            statement = statement.where(or_(*matches))
        return await self._page(statement, Instance, InstanceRow, after, size)

    async def _page(self, statement, table, row_type, after: object, size: int) -> Page:
        async with self.sessions() as session:
            rows, cursor = await newest_first(session, statement, table.created_at, table.id, after, size)
        return Page([row_type(*row) for row in rows], cursor)

    async def totals(self) -> dict[str, int]:
        """Users, instances, and instances per status, for the section's heading."""
        async with self.sessions() as session:
            users = await session.scalar(select(func.count()).select_from(User))
            by_status = dict((await session.execute(select(Instance.status, func.count()).group_by(Instance.status))).all())
        return {"users": users, "instances": sum(by_status.values()), **by_status}

    async def user(self, user_id: uuid.UUID) -> User | None:
        async with self.sessions() as session:
            return await session.get(User, user_id)

    async def instance(self, instance_id: uuid.UUID) -> InstanceRow | None:
        async with self.sessions() as session:
            found = (await session.execute(select(Instance, User.email, User.telegram_user_id)
                                           .join(User, User.id == Instance.user_id)
                                           .where(Instance.id == instance_id))).first()
        return InstanceRow(*found) if found else None


def _query(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_QUERY or "\x00" in value:
        raise InvalidInput(f"Search for text of at most {MAX_QUERY} characters.", field="q")
    return value.strip()


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
