"""The optional live check of an API key (CLAWFLEET_PROVIDER_CHECK_URLS) against the fake model
server over HTTP: a refused key is turned away at the edge, through the API and in chat."""

from __future__ import annotations

import pytest

from provisioner.providers import get_provider
from tests.fakes.model import FakeModel
from tests.support.api_client import running_api
from tests.support.bot_chat import Chat, running_platform
from tests.support.memory_runtime import MemoryRuntime
from tests.support.platform_process import free_port

GOOD_OPENAI_KEY = "sk-proj-acceptedACCEPTED0123456789ab"
REVOKED_OPENAI_KEY = "sk-proj-revokedREVOKED0123456789abcd"
GOOD_ANTHROPIC_KEY = "sk-ant-api03-acceptedACCEPTEDaccepted0123456789"


@pytest.fixture
async def model():
    async with FakeModel(expected_key=GOOD_OPENAI_KEY) as fake:
        yield fake


async def test_the_api_refuses_a_key_the_provider_refuses(settings, sessions, model) -> None:
    checked = settings.model_copy(update={"provider_check_urls": {
        "openai": f"{model.url}/v1/models", "anthropic": f"{model.url}/v1/models"}})
    runtime = MemoryRuntime()
    async with running_api(checked, runtime) as api:
        await api.sign_up()
        status, refused = await api.call("POST", "/api/instances",
                                         {"model_provider": "openai", "api_key": REVOKED_OPENAI_KEY})
        assert status == 400 and refused["error"]["field"] == "api_key"
        assert refused["error"]["message"].startswith("OpenAI refused this key (HTTP 401)")
        assert REVOKED_OPENAI_KEY not in refused["error"]["message"]
        status, created = await api.call("POST", "/api/instances",
                                         {"model_provider": "openai", "api_key": GOOD_OPENAI_KEY})
        assert status == 202, created
        checks = [r for r in model.requests if r.path == "/v1/models"]
        assert [(r.style, r.api_key) for r in checks] == [("openai", REVOKED_OPENAI_KEY), ("openai", GOOD_OPENAI_KEY)]

        model.expected_key = GOOD_ANTHROPIC_KEY  # Anthropic's own headers: x-api-key and a version
        status, changed = await api.call("PUT", f"/api/instances/{created['id']}/config",
                                         {"model_provider": "anthropic", "api_key": GOOD_ANTHROPIC_KEY})
        assert status == 200, changed
        last = model.requests[-1]
        assert last.style == "anthropic" and last.headers["anthropic-version"] and last.api_key == GOOD_ANTHROPIC_KEY
    await runtime.close()


async def test_a_check_that_gets_no_answer_does_not_block(settings, sessions) -> None:
    silent = settings.model_copy(update={"provider_check_urls": {"openai": f"http://127.0.0.1:{free_port()}/v1/models"}})
    runtime = MemoryRuntime()
    async with running_api(silent, runtime) as api:
        await api.sign_up()
        status, created = await api.call("POST", "/api/instances",
                                         {"model_provider": "openai", "api_key": REVOKED_OPENAI_KEY})
        assert status == 202, created
    await runtime.close()


async def test_in_chat_a_refused_key_is_asked_again(settings, sessions, runtime, chat: Chat, model) -> None:
    checked = settings.model_copy(update={"provider_check_urls": {"openai": f"{model.url}/v1/models"}})
    async with running_platform(checked, runtime):
        await chat.send("/start")
        await chat.press(await chat.reply("Welcome"), "provider:openai")
        await chat.press(await chat.reply("which model?"), f"model:{get_provider('openai').default_model}")
        message = await chat.send(REVOKED_OPENAI_KEY)
        refused = await chat.reply("Send the key again")
        assert "OpenAI refused this key" in refused["text"]
        assert chat.bot.deleted(chat.user.id, message["message_id"])
        await chat.send(GOOD_OPENAI_KEY)
        await chat.reply("Key received")
