"""Rows for tests, built the way the services will build them (secrets sealed)."""

from __future__ import annotations

import uuid

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, User
from db.sealing import KeyRing, seal_into


def new_user(**fields: object) -> User:
    fields.setdefault("email", f"{uuid.uuid4().hex[:8]}@example.com")
    fields.setdefault("password_hash", "$argon2id$not-a-real-hash")
    return User(**fields)


def new_instance(
    ring: KeyRing,
    user: User,
    api_key: str = "sk-test-0000000000000000",
    bot_token: str | None = None,
    **fields: object,
) -> Instance:
    fields.setdefault("subdomain", f"i-{uuid.uuid4().hex[:10]}")
    fields.setdefault("runtime", "process")
    fields.setdefault("model_provider", "openai")
    fields.setdefault("model", "gpt-4.1-mini")
    instance = Instance(user_id=user.id, **fields)
    seal_into(ring, instance, "api_key_sealed", SecretStr(api_key))
    seal_into(ring, instance, "telegram_bot_token_sealed", SecretStr(bot_token) if bot_token else None)
    return instance


async def saved_user(sessions: async_sessionmaker[AsyncSession], **fields: object) -> User:
    user = new_user(**fields)
    async with sessions() as session:
        session.add(user)
        await session.commit()
    return user
