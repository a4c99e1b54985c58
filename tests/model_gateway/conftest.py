"""A running model gateway over the test's database, in front of a fake model provider, and
instances with credentials for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from db.sealing import KeyRing
from model_gateway.prices import load_prices
from model_gateway.routes import Routes
from model_gateway.server import ModelGateway, ModelGatewayConfig, running_model_gateway, upstream_session_options
from model_gateway.usage_book import UsageBook
from provisioner.model_access import issue_credential
from tests.fakes.model import FakeModel
from tests.support.builders import new_instance, new_user

REAL_KEYS = {"openai": "sk-proj-REALkeyOPENAI0123456789abcd", "anthropic": "sk-ant-api03-REALkeyANTHROPIC0123456789",
             "moonshot": "sk-REALkeyMOONSHOT0123456789abcdef", "kimi-coding": "sk-kimi-REALkeyKIMI0123456789abcd"}


@dataclass(frozen=True)
class Caller:
    """An instance as the model gateway knows it: where its route is and what it presents."""

    instance_id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    credential: str
    base_url: str  # its route on the model gateway, standing for the provider's base URL (/v1 included)

    def headers(self, credential: str | None = None) -> dict[str, str]:
        sent = self.credential if credential is None else credential
        if self.provider in ("anthropic", "kimi-coding"):
            return {"x-api-key": sent, "anthropic-version": "2023-06-01"}
        return {"Authorization": f"Bearer {sent}"}


async def add_caller(sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, gateway: ModelGateway,
                     provider: str = "openai", user_id: uuid.UUID | None = None) -> Caller:
    async with sessions() as session:
        if user_id is None:
            user = new_user()
            session.add(user)
            await session.flush()
            user_id = user.id
        else:
            user = await session.get(User, user_id)
        instance = new_instance(keyring, user, api_key=REAL_KEYS[provider], model_provider=provider)
        credential = issue_credential(keyring, instance).get_secret_value()
        session.add(instance)
        await session.commit()
    return Caller(instance.id, user_id, provider, credential, f"http://127.0.0.1:{gateway.port}/i/{instance.id}")


@asynccontextmanager
async def gateway_before(model: FakeModel, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing,
                         flush_interval_s: float = 0.2) -> AsyncIterator[ModelGateway]:
    """A model gateway whose every provider's upstream is the fake (OpenAI-style ones under /v1)."""
    upstreams = {"openai": f"{model.url}/v1", "moonshot": f"{model.url}/v1", "anthropic": model.url,
                 "kimi-coding": model.url}
    routes = Routes(sessions, keyring, upstreams, read_cache_ttl_s=2.0)
    book = UsageBook(sessions, load_prices(), flush_interval_s=flush_interval_s)
    async with aiohttp.ClientSession(**upstream_session_options()) as http, \
            running_model_gateway(ModelGatewayConfig(), routes, book, http) as gateway:
        yield gateway


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    async with FakeModel() as model:
        yield model


@pytest.fixture
async def model_gateway(fake_model, sessions, keyring) -> AsyncIterator[ModelGateway]:
    async with gateway_before(fake_model, sessions, keyring) as gateway:
        yield gateway


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session

