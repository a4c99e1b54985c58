"""The real app with billing on, over the fake Stripe (tests/fakes/stripe) and in-memory gateways."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.stripe_fixtures import TEST_SECRET_KEY
from tests.support.web_client import WebUser
from web.keys import SERVICES

WEBHOOK_SECRET = "whsec_clawfleet_web_tests"
ROOT = Path(__file__).resolve().parents[3]


def with_billing(app: web.Application) -> None:
    """Until clawfleet.platform.web_services hands the platform's billing to the web app itself."""
    services = app[SERVICES]
    if services.billing is None and app[PLATFORM].billing is not None:
        app[SERVICES] = dataclasses.replace(services, billing=app[PLATFORM].billing)


@asynccontextmanager
async def billing_api(settings: Settings) -> AsyncIterator[Api]:
    runtime = MemoryRuntime()
    try:
        async with running_api(settings, runtime, prepare=with_billing) as api:
            yield api
    finally:
        await runtime.close()


@pytest.fixture
async def plans_file(stripe_fake, tmp_path) -> Path:
    """plans.example.toml with the fake's own prices in it."""
    text = (ROOT / "plans.example.toml").read_text()
    for plan, amount in (("personal", 900), ("team", 2900)):
        price = await stripe_fake.create_price(plan.capitalize(), amount)
        text = text.replace(f'"price_{plan}"', f'"{price["id"]}"')
    path = tmp_path / "plans.toml"
    path.write_text(text)
    return path


@pytest.fixture
def billing_settings(settings_for, stripe_fake, plans_file):
    def make(**overrides) -> Settings:
        return settings_for(stripe_secret_key=TEST_SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
                            stripe_api_url=stripe_fake.api_url, plans_file=plans_file, **overrides)
    return make


@pytest.fixture
async def api(billing_settings, stripe_fake, sessions) -> AsyncIterator[Api]:
    async with billing_api(billing_settings()) as api:
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
