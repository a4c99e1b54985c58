"""ClawFleet's own provider keys (CLAWFLEET_PLATFORM_KEYS) for users whose plan includes usage, or
with billing off the users the operator names: through the REST API and the platform's running
model gateway, in front of the fake model."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from sqlalchemy import update

from db.models import User
from tests.fakes.model import FakeModel
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

PLATFORM_KEY = "sk-proj-PLATFORMoperatorKEY0123456789"
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
async def model():
    async with FakeModel(reply="word " * 4000) as model:  # about $0.05 a call at the shipped price
        yield model


@pytest.fixture
async def api(settings_for, sessions, model):
    runtime = MemoryRuntime()
    settings = settings_for(platform_keys={"openai": PLATFORM_KEY}, platform_key_users=["ada@example.com"],
                            platform_key_usd=0.08, provider_urls={"openai": f"{model.url}/v1"})
    async with running_api(settings, runtime) as api:
        api.runtime = runtime
        yield api
    await runtime.close()


async def _verified(sessions, email: str) -> None:
    async with sessions() as session:
        await session.execute(update(User).where(User.email == email).values(email_verified_at=User.created_at))
        await session.commit()


async def _call(api: Api, instance_id: str) -> tuple[int, dict]:
    """A model call as the instance's gateway makes it: its route and credential on the model gateway."""
    launch = next(start for start in reversed(api.runtime.starts) if start.instance_id == uuid.UUID(instance_id))
    url = launch.model_url.replace("{platform}", "127.0.0.1") + "/chat/completions"
    async with aiohttp.ClientSession() as http, http.post(url, json=CHAT, headers={
            "Authorization": f"Bearer {launch.model_credential.get_secret_value()}"}) as response:
        return response.status, await response.json()


async def test_a_named_user_runs_on_the_platforms_key_until_the_included_usage_is_spent(
        api: Api, sessions, model: FakeModel) -> None:
    await api.sign_up("ada@example.com")
    await _verified(sessions, "ada@example.com")
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "use_platform_key": True})
    assert status == 202, created
    assert created["key"] == "platform"
    assert (await api.progress(created["id"]))[-1]["done"]

    assert (await _call(api, created["id"]))[0] == 200
    assert model.requests[-1].headers["authorization"] == f"Bearer {PLATFORM_KEY}"
    assert (await _call(api, created["id"]))[0] == 200  # $0.05 + $0.05: past the $0.08 included
    status, refused = await _call(api, created["id"])
    assert status == 429 and "included in your plan this month is used up" in refused["error"]["message"]
    assert len(model.requests) == 2

    # their own key takes over: the model gateway sends it from the next call on
    status, changed = await api.call("PUT", f"/api/instances/{created['id']}/config",
                                     {"api_key": "sk-proj-ADAownKEY0000000000000000"})
    assert status == 200, changed
    assert (await _call(api, created["id"]))[0] == 200
    assert model.requests[-1].headers["authorization"] == "Bearer sk-proj-ADAownKEY0000000000000000"


async def test_the_platforms_key_is_refused_to_others_and_for_providers_it_lacks(api: Api, sessions) -> None:
    await api.sign_up("bob@example.com")  # not named by the operator
    status, refused = await api.call("POST", "/api/instances", {"model_provider": "openai", "use_platform_key": True})
    assert status == 400 and refused["error"]["field"] == "use_platform_key"
    assert "includes no model usage" in refused["error"]["message"]

    await api.sign_up("ada@example.com")  # named, but unverified: anyone may register any address
    status, refused = await api.call("POST", "/api/instances", {"model_provider": "openai", "use_platform_key": True})
    assert status == 400 and refused["error"]["field"] == "use_platform_key"
    await _verified(sessions, "ada@example.com")
    status, refused = await api.call("POST", "/api/instances", {"model_provider": "anthropic",
                                                                "use_platform_key": True})
    assert status == 400 and "no key of its own for Anthropic" in refused["error"]["message"]
    status, refused = await api.call("POST", "/api/instances", {"model_provider": "openai",
                                                                "use_platform_key": "yes"})
    assert status == 400 and refused["error"]["field"] == "use_platform_key"
    status, refused = await api.call("POST", "/api/instances", {"model_provider": "openai"})
    assert status == 400 and refused["error"]["field"] == "api_key"
