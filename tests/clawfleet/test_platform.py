"""What the composition root runs besides the web app and the bot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from accounts.users import Accounts
from db.models import ApiToken
from tests.support.api_client import running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import eventually


async def test_the_platform_purges_expired_tokens_when_it_starts(settings_for, sessions) -> None:
    _, issued = await Accounts(sessions).register("ada@example.com", "correct horse battery")
    async with sessions() as session:
        await session.execute(update(ApiToken).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        await session.commit()

    async def gone() -> bool:
        async with sessions() as session:
            return await session.scalar(select(ApiToken.id).where(ApiToken.prefix == issued.token[:10])) is None

    async with running_api(settings_for(), MemoryRuntime()):
        await eventually(gone, timeout=5)
