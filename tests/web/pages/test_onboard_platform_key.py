"""The wizard's key step offers ClawFleet's own key to whom the operator gives it, and the
assistant deployed from that draft runs on it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from db.models import KEY_PLATFORM, Instance, User
from tests.support.web_client import WebUser, serving_pages

PLATFORM_KEY = "sk-proj-PLATFORMwebKEY0000123456789ab"


@pytest.fixture
async def offering(settings_for, sessions):
    settings = settings_for(platform_keys={"openai": PLATFORM_KEY}, platform_key_users=["ada@example.com"])
    async with serving_pages(settings) as api:
        yield api


async def _verified(sessions, email: str) -> None:
    async with sessions() as session:
        await session.execute(update(User).where(User.email == email).values(email_verified_at=User.created_at))
        await session.commit()


async def test_the_key_step_offers_clawfleets_key_and_the_deploy_uses_it(offering, sessions, telegram) -> None:
    person = WebUser(offering)
    try:
        await person.sign_up("ada@example.com")
        await _verified(sessions, "ada@example.com")
        step2 = await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
        assert step2.has("Use ClawFleet's key")
        step3 = await person.submit("/onboard/key", {"use_platform_key": "1", "api_key": ""})
        assert step3.url.endswith("/onboard/telegram")
        again = await person.get("/onboard/key")
        assert again.has("will use ClawFleet's key")
        bot = telegram.add_bot(username="included_web_bot")
        review = await person.submit("/onboard/telegram", {"telegram_bot_token": bot.token, "owner": "id",
                                                           "telegram_user_id": "4242"})
        assert review.has("ClawFleet's, included in your plan")
        await person.submit("/onboard/deploy", {})
        async with sessions() as session:
            [instance] = list(await session.scalars(select(Instance)))
        assert instance.key_source == KEY_PLATFORM and instance.api_key_sealed is None
    finally:
        await person.close()


async def test_others_are_not_offered_it_and_cannot_ask_for_it(offering, sessions) -> None:
    person = WebUser(offering)
    try:
        await person.sign_up("bob@example.com")
        step2 = await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
        assert not step2.has("Use ClawFleet's key")
        refused = await person.submit("/onboard/key", {"use_platform_key": "1", "api_key": ""})
        assert refused.status == 400 and refused.has("not offered to you")
    finally:
        await person.close()
