"""Who is an admin. Made by `clawfleet admin grant` or, while nobody is one, by the setup link the
platform prints in its log at start (never "the first to sign up": on a public deployment that
could be a stranger). The link works once, for 24 hours, and a restart while still no admin
exists voids it for a new one. Every grant and revoke is audited with who did it."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.login_links import ADMIN_SETUP, IssuedLink, LoginLinks, take_link, void_unbound
from accounts.users import _valid_email
from db import audit
from db.errors import Conflict, NotFound
from db.models import User

SETUP_PATH = "/admin/setup"


def actor_of(admin: User) -> str:
    """How the audit log names an admin acting from the dashboard."""
    return f"admin:{admin.email or f'telegram {admin.telegram_user_id}'}"


class Operators:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], links: LoginLinks) -> None:
        self.sessions = sessions
        self.links = links

    async def any_admin(self) -> bool:
        async with self.sessions() as session:
            return bool(await session.scalar(select(exists().where(User.is_admin.is_(True)))))

    async def grant(self, email: object, *, actor: str) -> User:
        """The account of `email` becomes an admin; an unused setup link is void from now."""
        return await self._set(email, True, actor)

    async def revoke(self, email: object, *, actor: str) -> User:
        return await self._set(email, False, actor)

    async def _set(self, email: object, is_admin: bool, actor: str) -> User:
        email = _valid_email(email)
        async with self.sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
            if user is None:
                raise NotFound(f"No account has the email {email}.", field="email")
            if user.is_admin == is_admin:
                raise Conflict(f"{email} is {'already' if is_admin else 'not'} an admin.", field="email")
            user.is_admin = is_admin
            if is_admin:
                await void_unbound(session, ADMIN_SETUP)
            audit.record(session, actor=actor, action="admin.grant" if is_admin else "admin.revoke", user_id=user.id)
            await session.commit()
            return user

    async def setup_link(self, public_url: str) -> tuple[str, IssuedLink] | None:
        """While no admin exists: a new setup link (older ones void) and its address; else None."""
        if await self.any_admin():
            return None
        issued = await self.links.issue_unbound(ADMIN_SETUP)
        return f"{public_url.rstrip('/')}{SETUP_PATH}?token={issued.token}", issued

    async def usable_setup_link(self, token: str) -> bool:
        return await self.links.usable(token, ADMIN_SETUP)

    async def redeem_setup_link(self, token: str, user: User) -> None:
        """`user` becomes an admin with the setup link `token`, which is used up; refused when it is
        unknown, used, expired or voided."""
        async with self.sessions() as session:
            await take_link(session, token, ADMIN_SETUP)
            row = await session.get(User, user.id)
            row.is_admin = True
            audit.record(session, actor=actor_of(row), action="admin.grant",
                         user_id=row.id, details={"by": "setup link"})
            await session.commit()
