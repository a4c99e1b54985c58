"""The model gateway's metering in /metrics: calls through the real platform's model gateway to
the fake model count their tokens by provider and kind, and a failed call counts as an error."""

from __future__ import annotations

import pytest

from tests.fakes.model import FakeModel
from tests.support.metrics_scrape import scrape, value
from tests.support.model_calls import model_calls, refused_call
from tests.support.web_client import serving_pages
from tests.web.pages.owned_instances import created


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        yield fake


@pytest.fixture
async def site(settings_for, sessions, model):
    async with serving_pages(settings_for(provider_urls={"openai": f"{model.url}/v1"})) as api:
        yield api


async def test_tokens_and_errors_by_provider(site, model) -> None:
    user = await site.platform.accounts.user_for_token(await site.sign_up())
    instance = await created(site, user)
    answers = await model_calls(site.platform, instance.id, 2)
    model.fail_next(500)
    assert (await refused_call(site.platform, instance.id))[0] == 500
    families = await scrape(site)
    prompt = sum(answer["usage"]["prompt_tokens"] for answer in answers)
    completion = sum(answer["usage"]["completion_tokens"] for answer in answers)
    assert prompt > 0 and completion > 0
    assert value(families, "clawfleet_model_tokens_total", provider="openai", kind="output") == completion
    assert value(families, "clawfleet_model_tokens_total", provider="openai", kind="input") == \
        prompt - sum(answer["usage"].get("prompt_tokens_details", {}).get("cached_tokens", 0) for answer in answers)
    assert value(families, "clawfleet_model_requests_total", provider="openai") == 3
    assert value(families, "clawfleet_model_errors_total", provider="openai") == 1
