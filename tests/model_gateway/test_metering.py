"""What the model gateway records is exactly what the provider reported: streamed and not, in
each API style, with 50 streams at once; per instance, day and model, priced from the table."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from sqlalchemy import select

from db.models import ModelUsage
from model_gateway.prices import load_prices
from model_gateway.usage import Usage
from tests.model_gateway.conftest import add_caller
from tests.support.waiting import eventually

SHAPES = {
    "openai-completions": ("moonshot", "/chat/completions",
                           lambda text: {"model": "kimi-k3", "messages": [{"role": "user", "content": text}]}),
    "openai-responses": ("openai", "/responses", lambda text: {"model": "gpt-5.5", "input": text}),
    "anthropic-messages": ("anthropic", "/v1/messages", lambda text: {
        "model": "claude-sonnet-5", "max_tokens": 512, "messages": [{"role": "user", "content": text}]}),
}


def _reported(style: str, answer: dict) -> Usage:
    """The usage the provider itself reported in a non-streamed answer."""
    usage = answer["usage"]
    if style == "openai-completions":
        return Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"])
    return Usage(input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"])


def _reported_in_stream(style: str, raw: bytes) -> Usage:
    """The usage the provider reported in a stream, read straight off its events."""
    usage = Usage()
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        if style == "openai-completions" and event.get("usage"):
            usage = Usage(event["usage"]["prompt_tokens"], event["usage"]["completion_tokens"])
        elif style == "openai-responses" and event.get("type") == "response.completed":
            reported = event["response"]["usage"]
            usage = Usage(reported["input_tokens"], reported["output_tokens"])
        elif style == "anthropic-messages" and event.get("type") == "message_start":
            usage = Usage(event["message"]["usage"]["input_tokens"], usage.output_tokens)
        elif style == "anthropic-messages" and event.get("type") == "message_delta":
            usage = Usage(usage.input_tokens, event["usage"]["output_tokens"])
    return usage


@pytest.mark.parametrize("style", list(SHAPES))
async def test_usage_matches_the_providers_report_under_50_concurrent_streams(
        fake_model, model_gateway, sessions, keyring, http, style) -> None:
    provider, path, body = SHAPES[style]
    callers = [await add_caller(sessions, keyring, model_gateway, provider) for _ in range(5)]
    fake_model.reply = lambda text: f"an answer of some length to {text} " * (1 + len(text) % 7)
    fake_model.chunk_delay_s = 0.002  # streams overlap for real

    async def call(number: int, streamed: bool) -> tuple[int, Usage]:
        caller = callers[number % len(callers)]
        request = {**body(f"question {number} " + "x" * number), "stream": streamed}
        async with http.post(caller.base_url + path, json=request, headers=caller.headers()) as response:
            assert response.status == 200
            if streamed:
                return number, _reported_in_stream(style, await response.read())
            return number, _reported(style, await response.json())

    results = await asyncio.gather(*(call(n, True) for n in range(50)), *(call(n, False) for n in range(50, 60)))
    if style == "openai-completions":  # the gateway asked for the usage chunk the caller did not
        assert all(r.body.get("stream_options", {}).get("include_usage") for r in fake_model.requests if r.stream)

    expected: dict = {}
    requests: Counter = Counter()
    for number, usage in results:
        instance = callers[number % len(callers)].instance_id
        expected[instance] = expected.get(instance, Usage()) + usage
        requests[instance] += 1

    async def recorded() -> dict:
        async with sessions() as session:
            rows = list(await session.scalars(select(ModelUsage)))
        return {row.instance_id: row for row in rows}

    await eventually(lambda: _all_in(recorded, requests), timeout=10, what="every call recorded")
    rows = await recorded()
    prices = load_prices()
    for instance, usage in expected.items():
        row = rows[instance]
        assert (row.input_tokens, row.output_tokens, row.requests, row.errors) == (
            usage.input_tokens, usage.output_tokens, requests[instance], 0)
        assert row.model == body("")["model"] and row.provider == provider
        assert row.cost_micro_usd == sum(prices.cost_micro_usd(provider, row.model, u) for n, u in results
                                         if callers[n % len(callers)].instance_id == instance)


async def _all_in(recorded, requests: Counter) -> bool:
    rows = await recorded()
    return all(instance in rows and rows[instance].requests == count for instance, count in requests.items())


async def test_errors_are_counted_and_cost_nothing(fake_model, model_gateway, sessions, keyring, http) -> None:
    caller = await add_caller(sessions, keyring, model_gateway, "anthropic")
    fake_model.fail_next(529, times=2)
    for _ in range(3):
        async with http.post(caller.base_url + "/v1/messages", headers=caller.headers(), json=SHAPES[
                "anthropic-messages"][2]("hi")) as response:
            await response.read()

    async def counted() -> ModelUsage | None:
        async with sessions() as session:
            row = (await session.scalars(select(ModelUsage))).first()
        return row if row is not None and row.requests == 3 else None

    await eventually(counted, timeout=5, what="three calls recorded")
    row = await counted()
    assert row.errors == 2 and row.output_tokens > 0 and row.cost_micro_usd > 0  # the one that answered
