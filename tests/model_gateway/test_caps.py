"""Spending caps at the model gateway, over real HTTP in front of the fake model: the owner is
warned once at 80%, calls past the cap are refused before they reach the provider with a 429
that says why (and the owner told once), and a raised cap lets the next call through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from db.errors import InvalidInput
from db.models import User
from model_gateway.caps import SpendCaps
from model_gateway.prices import load_prices
from model_gateway.routes import Routes
from model_gateway.server import ModelGatewayConfig, running_model_gateway, upstream_session_options
from model_gateway.usage import Usage
from model_gateway.usage_book import UsageBook
from provisioner.entitlements import Allowance
from tests.model_gateway.conftest import add_caller
from tests.support.waiting import eventually

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello there"}]}


@dataclass
class Told:
    """The notices the owner would read in chat."""

    texts: list[str] = field(default_factory=list)

    async def notify(self, user_id, text, offers=()) -> None:
        self.texts.append(text)

    async def follow(self, user_id, instance_id, title) -> None:
        return None


@dataclass
class Ceiling:
    usd: float | None = None

    async def allowance(self, user: User) -> Allowance:
        return Allowance(1, 1536, 1.0, spend_cap_ceiling_usd=self.usd)


@pytest.fixture
async def capped(fake_model, sessions, keyring) -> AsyncIterator[tuple]:
    upstreams = {"openai": f"{fake_model.url}/v1", "anthropic": fake_model.url}
    book = UsageBook(sessions, load_prices(), flush_interval_s=0.2)
    told, ceiling = Told(), Ceiling()
    caps = SpendCaps(sessions, book, ceiling, told)
    async with aiohttp.ClientSession(**upstream_session_options()) as http, running_model_gateway(
            ModelGatewayConfig(), Routes(sessions, keyring, upstreams), book, http, caps) as gateway:
        yield gateway, caps, told, ceiling


async def _call(http, caller) -> tuple[int, dict]:
    async with http.post(caller.base_url + "/chat/completions", json=CHAT, headers=caller.headers()) as response:
        return response.status, await response.json()


async def test_warned_at_80_percent_refused_at_the_cap_and_let_through_when_raised(
        capped, fake_model, sessions, keyring, http) -> None:
    gateway, caps, told, _ = capped
    caller = await add_caller(sessions, keyring, gateway)
    fake_model.reply = "word " * 8000  # about 10,000 tokens: $0.10 a call at the shipped price
    status, first = await _call(http, caller)
    assert status == 200
    one_call = load_prices().cost_micro_usd("openai", "gpt-5.5", Usage(
        input_tokens=first["usage"]["prompt_tokens"], output_tokens=first["usage"]["completion_tokens"]))
    async with sessions() as session:
        user = await session.get(User, caller.user_id)
    await caps.set_cap(user, one_call * 2.5 / 1_000_000)  # room for three calls, the third crossing it

    assert (await _call(http, caller))[0] == 200  # 2 calls: 80% of the cap
    await eventually_told(told, 1)
    assert "over 80%" in told.texts[0]
    assert (await _call(http, caller))[0] == 200  # under the cap when it started: it runs
    forwarded = len(fake_model.requests)

    status, refused = await _call(http, caller)
    assert status == 429
    assert refused["error"]["code"] == "spend_cap_reached"
    cap = f"${one_call * 2.5 / 1_000_000:.2f}"
    assert f"monthly spending cap of {cap} is reached" in refused["error"]["message"]
    assert "resets on" in refused["error"]["message"] and len(refused["error"]["message"]) < 300
    assert (await _call(http, caller))[0] == 429
    assert len(fake_model.requests) == forwarded  # nothing refused reached the provider

    await eventually_told(told, 2)
    assert "stopped answering" in told.texts[1] and len(told.texts) == 2  # told once, not per refusal

    await caps.set_cap(user, 1)  # raised: the very next call goes
    assert (await _call(http, caller))[0] == 200


async def eventually_told(told: Told, count: int) -> None:
    await eventually(lambda: len(told.texts) >= count, timeout=5, what=f"{count} notices")


async def test_the_cap_counts_every_instance_of_the_owner(capped, sessions, keyring, http) -> None:
    gateway, caps, _, _ = capped
    a = await add_caller(sessions, keyring, gateway)
    b = await add_caller(sessions, keyring, gateway, user_id=a.user_id)
    assert (await _call(http, a))[0] == 200
    async with sessions() as session:
        user = await session.get(User, a.user_id)
    standing = await caps.set_cap(user, 0.000001)  # one micro-dollar: already spent
    assert standing.reached
    assert (await _call(http, b))[0] == 429


async def test_the_plans_ceiling_bounds_the_cap(capped, sessions, keyring) -> None:
    gateway, caps, _, ceiling = capped
    caller = await add_caller(sessions, keyring, gateway)
    async with sessions() as session:
        user = await session.get(User, caller.user_id)
    ceiling.usd = 50
    with pytest.raises(InvalidInput, match=r"at most \$50.00"):
        await caps.set_cap(user, 80)
    assert (await caps.set_cap(user, None)).cap_micro_usd == 50_000_000  # no cap of their own: the ceiling
    assert (await caps.set_cap(user, "12.5")).cap_micro_usd == 12_500_000
    for bad in ("twelve", -1, 0, float("nan"), True):
        with pytest.raises(InvalidInput) as refused:
            await caps.set_cap(user, bad)
        assert refused.value.field == "spend_cap_usd"
