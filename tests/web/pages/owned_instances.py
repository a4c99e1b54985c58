"""A signed-in person with instances of their own, made through the service as the API does,
for the dashboard's and the instance pages' tests."""

from __future__ import annotations

import asyncio
import re
import uuid

from db.models import Instance, User
from tests.support.web_client import WebUser

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
ANOTHER_KEY = "sk-proj-secondCANARYsecond0123456789"


async def signed_up(browser_for, email: str | None = None) -> tuple[WebUser, User]:
    person = browser_for()
    await person.sign_up(email or f"{uuid.uuid4().hex[:8]}@example.com")
    user = await person.api.platform.accounts.user_for_token(person.cookie("clawfleet_session"))
    assert user is not None
    return person, user


async def created(site, user: User, *, bot=None, owner: int | None = 4242, wait_for: str | None = "running",
                  **fields) -> Instance:
    instance = await site.platform.instances.create(
        user, model_provider=fields.pop("model_provider", "openai"), api_key=fields.pop("api_key", OPENAI_KEY),
        telegram_bot_token=bot.token if bot else None, telegram_user_id=owner, **fields)
    return await settled(site, user, instance.id, wait_for) if wait_for else instance


async def settled(site, user: User, instance_id, status: str, timeout: float = 20) -> Instance:
    """The instance once it has that status and no action in progress."""
    service = site.platform.instances
    async with asyncio.timeout(timeout):
        while True:
            instance = await service.get(user, instance_id)
            if instance.status == status and service.manager.action_in_progress(instance.id) is None:
                return instance
            await asyncio.sleep(0.05)


def offered_actions(text: str) -> set[str]:
    """The action forms a page shows (hidden ones are not offered)."""
    return {found.group(1) for found in re.finditer(r'<form [^>]*data-action="(\w+)"(?![^>]*hidden)[^>]*>', text)}
