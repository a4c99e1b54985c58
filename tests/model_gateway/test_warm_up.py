"""Warm-up calls over real HTTP on loopback: a call carrying its instance's live nonce is
answered by the model gateway itself, in the provider's own API style (streamed when asked),
and is neither forwarded nor metered; another instance's nonce, a revoked or a lapsed one is
ordinary text, forwarded like any other."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from db.models import ModelUsage
from model_gateway.usage import StreamMeter
from model_gateway.warm_up import REPLY, WarmUpNonces
from tests.model_gateway.conftest import add_caller
from tests.support.waiting import eventually

STYLES = [
    ("openai", "/responses", "openai-responses", lambda text: {"model": "gpt-5.5", "input": text}),
    ("moonshot", "/chat/completions", "openai-completions",
     lambda text: {"model": "kimi-k2", "messages": [{"role": "user", "content": text}]}),
    ("anthropic", "/v1/messages", "anthropic-messages",
     lambda text: {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("provider", "path", "style", "body"), STYLES, ids=[s[0] for s in STYLES])
async def test_a_warm_up_call_is_answered_here_in_the_providers_style(
        fake_model, model_gateway, sessions, keyring, http, provider, path, style, body, stream) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, provider)
    nonce = model_gateway.warm_ups.register(caller.instance_id)
    asked = {**body(f"Warm-up check {nonce}: reply with one word."), "stream": stream}
    if stream and style == "openai-completions":
        asked["stream_options"] = {"include_usage": True}
    async with http.post(caller.base_url + path, json=asked, headers=caller.headers()) as response:
        assert response.status == 200
        raw = await response.read()
    assert fake_model.requests == []  # the provider saw nothing
    if stream:
        assert response.content_type == "text/event-stream"
        meter = StreamMeter(style)
        meter.feed(raw)
        assert meter.completed and meter.model == asked["model"]
        assert REPLY in raw.decode()
    else:
        answer = json.loads(raw)
        assert REPLY in json.dumps(answer) and answer["model"] == asked["model"]

    # Not metered: an ordinary call after it is the only one the usage book counts.
    async with http.post(caller.base_url + path, json=body("hello there"), headers=caller.headers()) as response:
        assert response.status == 200
    assert len(fake_model.requests) == 1

    rows: list[ModelUsage] = []

    async def recorded() -> bool:
        async with sessions() as session:
            rows[:] = await session.scalars(select(ModelUsage).where(ModelUsage.instance_id == caller.instance_id))
        return bool(rows)

    await eventually(recorded, timeout=10, what=lambda: "the ordinary call recorded")
    assert [(row.requests, row.errors) for row in rows] == [(1, 0)]


async def test_only_the_instances_own_live_nonce_is_answered_here(
        fake_model, model_gateway, sessions, keyring, http) -> None:
    a = await add_caller(sessions, keyring, model_gateway)
    b = await add_caller(sessions, keyring, model_gateway)
    b_nonce = model_gateway.warm_ups.register(b.instance_id)
    a_nonce = model_gateway.warm_ups.register(a.instance_id)
    model_gateway.warm_ups.revoke(a.instance_id, a_nonce)
    for text in (f"B's {b_nonce} sent by A", f"A's revoked {a_nonce}"):
        async with http.post(a.base_url + "/responses", json={"model": "gpt-5.5", "input": text},
                             headers=a.headers()) as response:
            assert response.status == 200
            assert "fake reply to" in await response.text()
    assert len(fake_model.requests) == 2  # both went to the provider as ordinary text
    # Nothing but a model turn is answered for a warm-up: an embedding is refused, not forwarded.
    async with http.post(b.base_url + "/embeddings", json={"model": "text-embedding-3-small", "input": b_nonce},
                         headers=b.headers()) as response:
        assert response.status == 400 and (await response.json())["error"]["message"] == "not a model turn"
    assert len(fake_model.requests) == 2


def test_a_nonce_lapses_by_itself() -> None:
    now = [100.0]
    nonces = WarmUpNonces(ttl_s=60, clock=lambda: now[0])
    instance = uuid.uuid4()
    nonce = nonces.register(instance)
    assert nonces.carried_by(instance, f"x {nonce} y".encode())
    assert not nonces.carried_by(uuid.uuid4(), nonce.encode())  # another instance's
    now[0] += 61
    assert not nonces.carried_by(instance, nonce.encode())
    assert nonces.register(instance) != nonce  # one-time: a new warm-up gets a new one


async def test_a_retired_nonce_answers_for_its_grace_then_never() -> None:
    now = [100.0]
    nonces = WarmUpNonces(ttl_s=300, clock=lambda: now[0])
    instance = uuid.uuid4()
    nonce = nonces.register(instance)
    nonces.answered(instance, nonce)
    await nonces.wait_answered(instance, nonce)  # set: returns at once
    nonces.retire(instance, nonce, grace_s=30)
    now[0] += 29
    assert nonces.carried_by(instance, nonce.encode()) == nonce
    now[0] += 2
    assert nonces.carried_by(instance, nonce.encode()) is None
    nonces.register(uuid.uuid4())  # and a lapsed one is swept away by the next warm-up
    assert instance not in nonces._live
