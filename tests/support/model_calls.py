"""Model calls as an instance's gateway makes them: with the instance's own credential, through
the running platform's model gateway to its upstream (a fake model in tests), then written down
(the usage book flushed), so what the usage views show comes from real metering."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import aiohttp
import pytest

from clawfleet.platform import Platform
from db.models import Instance
from db.sealing import open_from
from model_gateway import usage_book
from model_gateway.prices import load_prices
from model_gateway.usage import Usage

MODEL = "gpt-5.5"


async def model_calls(platform: Platform, instance_id: uuid.UUID | str, count: int = 1, *,
                      model: str = MODEL, text: str = "hello there") -> list[dict]:
    """`count` Chat Completions through the model gateway, flushed; the provider's answers."""
    url, headers = await _route(platform, instance_id)
    answers = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            async with http.post(url, json={"model": model, "messages": [{"role": "user", "content": text}]},
                                 headers=headers) as response:
                assert response.status == 200, await response.text()
                answers.append(await response.json())
    await platform.model_gateway.book.flush()
    return answers


async def refused_call(platform: Platform, instance_id: uuid.UUID | str) -> tuple[int, dict]:
    """One more call, expected to be refused: its status and body."""
    url, headers = await _route(platform, instance_id)
    async with aiohttp.ClientSession() as http, http.post(
            url, json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, headers=headers) as response:
        return response.status, await response.json()


async def _route(platform: Platform, instance_id: uuid.UUID | str) -> tuple[str, dict[str, str]]:
    """The instance's Chat Completions URL on the model gateway, and its credential as a header."""
    async with platform.sessions() as session:
        instance = await session.get(Instance, uuid.UUID(str(instance_id)))
    credential = open_from(platform.keyring, instance, "model_credential_sealed").get_secret_value()
    return (f"http://127.0.0.1:{platform.model_gateway.port}/i/{instance.id}/chat/completions",
            {"Authorization": f"Bearer {credential}"})


def cost_of(answers: list[dict], model: str = MODEL) -> int:
    """What the shipped prices make of the usage the provider reported, in micro-dollars."""
    prices = load_prices()
    return sum(prices.cost_micro_usd("openai", model, Usage(input_tokens=answer["usage"]["prompt_tokens"],
                                                             output_tokens=answer["usage"]["completion_tokens"]))
               for answer in answers)


def tokens_of(answers: list[dict], kind: str) -> int:
    return sum(answer["usage"][kind] for answer in answers)


@contextlib.contextmanager
def calls_dated(monkeypatch: pytest.MonkeyPatch, day: date) -> Iterator[None]:
    """Calls made inside are written down under `day` (UTC), as if made then."""
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    with monkeypatch.context() as patch:
        patch.setattr(usage_book, "utcnow", lambda: moment)
        yield
