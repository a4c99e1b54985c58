"""GET /api/instances/{id}/usage, GET /api/me/usage and PUT /api/me/spend-cap over the real app
(in-memory gateways), the usage made by model calls sent through the platform's running model
gateway to a fake model: the views add up what the provider reported, priced by the shipped
table, and a cap set here is the one the model gateway enforces."""

from __future__ import annotations

from datetime import timedelta

import pytest

from model_gateway.reports import utc_today
from tests.fakes.model import FakeModel
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.model_calls import MODEL, calls_dated, cost_of, model_calls, refused_call, tokens_of

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
NUMBERS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests", "errors",
           "cost_usd"}


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with FakeModel() as model:
        settings = settings_for(max_instances_per_user=2, provider_urls={"openai": f"{model.url}/v1"})
        async with running_api(settings, runtime) as api:
            api.model = model
            await api.sign_up()
            yield api
    await runtime.close()


async def _instance(api: Api) -> str:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    await api.wait_status(created["id"], "running", timeout=20)
    return created["id"]


def _usd(micro: int) -> float:
    return round(micro / 1_000_000, 6)


async def test_usage_per_day_adds_up_the_calls_the_model_gateway_metered(api: Api, monkeypatch) -> None:
    instance_id = await _instance(api)
    today = utc_today()
    last_month = today.replace(day=1) - timedelta(days=1)  # never this month: the cap's count leaves it out
    api.model.reply = "word " * 400
    with calls_dated(monkeypatch, last_month):
        earlier = await model_calls(api.platform, instance_id)
    now = await model_calls(api.platform, instance_id, 2)

    status, usage = await api.call("GET", f"/api/instances/{instance_id}/usage?from={last_month}&to={today}")
    assert status == 200, usage
    assert (usage["instance_id"], usage["from"], usage["to"]) == (instance_id, str(last_month), str(today))
    days = usage["days"]
    assert [day["day"] for day in days] == [str(last_month + timedelta(days=n))
                                            for n in range((today - last_month).days + 1)]
    assert all(set(day) == NUMBERS | {"day", "models"} for day in days)
    first, last = days[0], days[-1]
    assert first["requests"] == 1 and first["cost_usd"] == _usd(cost_of(earlier)) > 0
    assert last["requests"] == 2 and last["errors"] == 0 and last["cost_usd"] == _usd(cost_of(now))
    assert last["input_tokens"] == tokens_of(now, "prompt_tokens")
    assert last["output_tokens"] == tokens_of(now, "completion_tokens")
    assert [model["model"] for model in last["models"]] == [MODEL]
    assert last["models"][0]["cost_usd"] == last["cost_usd"] and set(last["models"][0]) == NUMBERS | {"model"}
    assert all(day["requests"] == 0 and day["cost_usd"] == 0 and day["models"] == [] for day in days[1:-1])
    assert usage["totals"]["requests"] == 3
    assert usage["totals"]["cost_usd"] == _usd(cost_of(earlier + now))
    # the month is this month only, across the user's instances, with no cap set
    assert usage["month"] == {"spent_usd": _usd(cost_of(now)), "cap_usd": None, "own_cap_usd": None,
                              "ceiling_usd": None, "near": False, "reached": False,
                              "resets_on": str((today.replace(day=28) + timedelta(days=4)).replace(day=1)),
                              "included_usd": None, "included_spent_usd": 0, "overage_billed": False,
                              "overage_usd": 0}  # their own key: nothing included, nothing billed

    status, recent = await api.call("GET", f"/api/instances/{instance_id}/usage")
    assert status == 200
    assert (recent["from"], recent["to"]) == (str(today - timedelta(days=29)), str(today))
    assert len(recent["days"]) == 30 and recent["days"][-1]["requests"] == 2


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-13-01", "from"), ("to=yesterday", "to"), ("from=20260101", "from"), ("to=2026-02-30", "to"),
    ("from=2026-03-02&to=2026-03-01", "from"), ("from=2025-01-01&to=2026-01-02", "from"),
])
async def test_bad_days_are_refused_naming_the_parameter(api: Api, query: str, field: str) -> None:
    instance_id = await _instance(api)
    status, body = await api.call("GET", f"/api/instances/{instance_id}/usage?{query}")
    assert status == 400 and body["error"]["code"] == "invalid_input" and body["error"]["field"] == field, body
    assert body["error"]["message"]


async def test_a_whole_year_of_366_days_is_allowed(api: Api) -> None:
    instance_id = await _instance(api)
    status, body = await api.call("GET", f"/api/instances/{instance_id}/usage?from=2024-01-01&to=2024-12-31")
    assert status == 200 and len(body["days"]) == 366


async def test_someone_elses_instance_answers_404(api: Api) -> None:
    instance_id = await _instance(api)
    await model_calls(api.platform, instance_id)
    owner = api.token
    await api.sign_up()  # another person, now the caller
    status, body = await api.call("GET", f"/api/instances/{instance_id}/usage")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert (await api.call("GET", "/api/instances/not-an-id/usage"))[0] == 404
    status, mine = await api.call("GET", "/api/me/usage")
    assert status == 200 and mine["instances"] == [] and mine["month"]["requests"] == 0
    assert (await api.call("GET", f"/api/instances/{instance_id}/usage", token=owner))[0] == 200
    assert (await api.call("GET", "/api/me/usage", token="cf_nobody"))[0] == 401


async def test_the_month_across_instances_and_a_cap_the_model_gateway_enforces(api: Api) -> None:
    first, second = await _instance(api), await _instance(api)
    api.model.reply = "word " * 400
    on_first = await model_calls(api.platform, first, 2)
    on_second = await model_calls(api.platform, second)

    status, usage = await api.call("GET", "/api/me/usage")
    assert status == 200, usage
    assert usage["month_start"] == str(utc_today().replace(day=1))
    assert usage["month"]["requests"] == usage["today"]["requests"] == 3
    assert usage["month"]["cost_usd"] == _usd(cost_of(on_first + on_second))
    assert [(each["instance_id"], each["month"]["requests"]) for each in usage["instances"]] == [(first, 2), (second, 1)]
    assert usage["cap"]["cap_usd"] is None

    status, standing = await api.call("PUT", "/api/me/spend-cap", {"spend_cap_usd": 20})
    assert status == 200, standing
    assert (standing["cap_usd"], standing["own_cap_usd"], standing["reached"]) == (20, 20, False)
    assert standing["spent_usd"] == usage["month"]["cost_usd"]
    assert (await api.call("GET", "/api/me/usage"))[1]["cap"]["cap_usd"] == 20

    # a cap under what was spent already: the next call through the model gateway is refused
    spent = cost_of(on_first + on_second)
    status, standing = await api.call("PUT", "/api/me/spend-cap", {"spend_cap_usd": spent / 2_000_000})
    assert status == 200 and standing["reached"] is True and standing["near"] is True
    status, refused = await refused_call(api.platform, first)
    assert status == 429 and "spending cap" in refused["error"]["message"]

    status, standing = await api.call("PUT", "/api/me/spend-cap", {"spend_cap_usd": None})
    assert status == 200 and standing["cap_usd"] is None and standing["reached"] is False
    await model_calls(api.platform, first)  # answered again


@pytest.mark.parametrize("body", [{"spend_cap_usd": "20"}, {"spend_cap_usd": 0}, {"spend_cap_usd": -5},
                                  {"spend_cap_usd": True}, {"spend_cap_usd": 10_000_000}, {}])
async def test_a_bad_cap_is_refused_naming_spend_cap_usd(api: Api, body: dict) -> None:
    status, answer = await api.call("PUT", "/api/me/spend-cap", body)
    assert status == 400 and answer["error"]["field"] == "spend_cap_usd", answer
    assert (await api.call("GET", "/api/me/usage"))[1]["cap"]["own_cap_usd"] is None  # nothing changed


async def test_an_api_token_reads_and_sets_the_cap_as_a_session_does(api: Api) -> None:
    _, issued = await api.call("POST", "/api/tokens", {"name": "spending script"})
    status, standing = await api.call("PUT", "/api/me/spend-cap", {"spend_cap_usd": 12.5}, token=issued["token"])
    assert status == 200 and standing["own_cap_usd"] == 12.5
    status, usage = await api.call("GET", "/api/me/usage", token=issued["token"])
    assert status == 200 and usage["cap"]["cap_usd"] == 12.5
