"""The real app with billing on, over the fake Stripe (tests/fakes/stripe) and in-memory gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clawfleet.settings import Settings
from tests.support.api_client import Api
from tests.support.billing import WEBHOOK_SECRET, with_example_prices
from tests.support.web_client import WebUser, serving_pages


@pytest.fixture
async def billing_settings(settings_for, stripe_fake):
    """Settings with billing on over the fake Stripe, with the example plans' prices made in it."""
    overrides = await with_example_prices(stripe_fake)

    def make(**more) -> Settings:
        return settings_for(**{**overrides, **more})
    return make


@pytest.fixture
async def api(billing_settings, stripe_fake, sessions) -> AsyncIterator[Api]:
    async with serving_pages(billing_settings()) as api:
        stripe_fake.configure_webhook(api.url("/api/webhooks/stripe"), WEBHOOK_SECRET)
        yield api


@pytest.fixture
async def browser_for(api):
    opened: list[WebUser] = []

    def open_one() -> WebUser:
        opened.append(WebUser(api))
        return opened[-1]

    yield open_one
    for user in opened:
        await user.close()
