"""The model gateway over real HTTP on loopback, between a client that talks as an instance's
OpenClaw would and the fake model provider: the real key goes out in the provider's own header
and the credential never does; answers, streams and errors come back as the provider sent
them; only an instance's own credential on its own route is let through."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from db.models import Instance, ModelUsage
from db.sealing import seal_into
from provisioner.model_access import revoke_credential
from tests.fakes.model import FakeModel
from tests.model_gateway.conftest import REAL_KEYS, add_caller, gateway_before
from tests.support.waiting import eventually

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello there"}]}
ANTHROPIC = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hello there"}


@pytest.mark.parametrize(("provider", "path", "body", "header"), [
    ("openai", "/responses", RESPONSES, "authorization"),
    ("openai", "/chat/completions", CHAT, "authorization"),
    ("moonshot", "/chat/completions", CHAT, "authorization"),
    ("anthropic", "/v1/messages", ANTHROPIC, "x-api-key"),
    ("kimi-coding", "/v1/messages", ANTHROPIC, "x-api-key"),
])
async def test_the_real_key_goes_out_in_the_providers_own_header_and_the_credential_never(
        fake_model, model_gateway, sessions, keyring, http, provider, path, body, header) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, provider)
    fake_model.expected_key = REAL_KEYS[provider]
    async with http.post(caller.base_url + path, json=body, headers=caller.headers()) as response:
        answer = await response.json()
        assert response.status == 200, answer
    assert "fake reply to: hello there" in json.dumps(answer)
    seen = fake_model.requests[-1]
    expected = REAL_KEYS[provider] if header == "x-api-key" else f"Bearer {REAL_KEYS[provider]}"
    assert seen.headers[header] == expected
    assert caller.credential not in json.dumps(seen.headers)
    other = "authorization" if header == "x-api-key" else "x-api-key"
    assert other not in seen.headers
    if header == "x-api-key":
        assert seen.headers["anthropic-version"] == "2023-06-01"  # the caller's own headers go along


async def test_only_the_routes_own_credential_opens_it(fake_model, model_gateway, sessions, keyring, http) -> None:
    a = await add_caller(sessions, keyring, model_gateway)
    b = await add_caller(sessions, keyring, model_gateway)
    refused = [
        (b.base_url, a.headers()),  # A's credential on B's route
        (a.base_url, {}),  # none at all
        (a.base_url, a.headers(credential="cf-model-guess")),
        (a.base_url, {"Authorization": f"Basic {a.credential}"}),
        (a.base_url, {"Authorization": f"Bearer {REAL_KEYS['openai']}"}),  # the provider's key itself
    ]
    for base_url, headers in refused:
        async with http.post(base_url + "/chat/completions", json=CHAT, headers=headers) as response:
            assert response.status == 401
            assert (await response.json())["error"]["type"] == "authentication_error"
    assert fake_model.requests == []  # nothing refused reached the provider
    async with http.post(a.base_url.replace(str(a.instance_id), "not-an-id") + "/chat/completions", json=CHAT,
                         headers=a.headers()) as response:
        assert response.status == 404


async def test_a_revoked_credential_is_refused_at_once(fake_model, model_gateway, sessions, keyring, http) -> None:
    caller = await add_caller(sessions, keyring, model_gateway)
    async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
        assert response.status == 200  # and now the route is in the gateway's read cache
    async with sessions() as session:
        revoke_credential(await session.get(Instance, caller.instance_id))
        await session.commit()
    async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
        assert response.status == 401


async def test_a_new_key_is_used_from_the_next_call_on(fake_model, model_gateway, sessions, keyring, http) -> None:
    caller = await add_caller(sessions, keyring, model_gateway)
    async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
        assert response.status == 200
    async with sessions() as session:
        seal_into(keyring, await session.get(Instance, caller.instance_id), "api_key_sealed",
                  SecretStr("sk-proj-NEWkey0000000000000000000"))
        await session.commit()
    async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
        assert response.status == 200
    assert fake_model.requests[-1].headers["authorization"] == "Bearer sk-proj-NEWkey0000000000000000000"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_provider_errors_come_back_as_the_provider_sent_them(
        fake_model, model_gateway, sessions, keyring, http, status) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, "anthropic")
    fake_model.fail_next(status, message=f"upstream says {status}")
    async with http.post(caller.base_url + "/v1/messages", json=ANTHROPIC, headers=caller.headers()) as response:
        assert response.status == status
        body = await response.json()
    assert body["type"] == "error" and body["error"]["message"] == f"upstream says {status}"


async def test_a_provider_that_cannot_be_reached_is_a_502_in_its_own_shape(sessions, keyring, http) -> None:
    async with FakeModel() as gone:
        pass  # started and closed: its port now refuses connections
    async with gateway_before(gone, sessions, keyring) as gateway:
        caller = await add_caller(sessions, keyring, gateway, "openai")
        async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
            assert response.status == 502
            assert "could not reach OpenAI" in (await response.json())["error"]["message"]


@pytest.mark.parametrize(("provider", "path", "body"), [
    ("anthropic", "/v1/messages", ANTHROPIC), ("openai", "/chat/completions", CHAT),
    ("openai", "/responses", RESPONSES),
])
async def test_streams_pass_through_as_the_provider_emits_them(
        fake_model, model_gateway, sessions, keyring, http, provider, path, body) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, provider)
    fake_model.chunk_delay_s = 0.15
    fake_model.reply = "one two three four five six"
    arrivals = []
    async with http.post(caller.base_url + path, json={**body, "stream": True}, headers=caller.headers()) as response:
        assert response.status == 200 and response.content_type == "text/event-stream"
        async for chunk in response.content.iter_any():
            arrivals.append((time.monotonic(), chunk))
    gaps = [later[0] - earlier[0] for earlier, later in zip(arrivals, arrivals[1:])]
    # Each event arrived apart, about as far apart as the fake sent them: nothing was held back.
    assert len(arrivals) >= 6 and sorted(gaps)[len(gaps) // 2] > 0.1, gaps


async def test_a_stream_cut_by_the_provider_is_cut_for_the_instance_too(
        fake_model, model_gateway, sessions, keyring, http) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, "anthropic")
    fake_model.drop_next_stream(after_events=2)
    got = b""
    with pytest.raises(Exception) as cut:  # the client sees the connection end mid-body
        async with http.post(caller.base_url + "/v1/messages", json={**ANTHROPIC, "stream": True},
                             headers=caller.headers()) as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                got += chunk
    assert "Payload" in type(cut.value).__name__ or "Connection" in type(cut.value).__name__, cut.value
    assert b"message_start" in got and b"message_stop" not in got

    async def counted_as_error() -> bool:
        async with sessions() as session:
            row = (await session.execute(select(ModelUsage))).scalar_one_or_none()
            return row is not None and row.errors == 1

    await eventually(counted_as_error, timeout=5, what="the cut stream counted as an error")
