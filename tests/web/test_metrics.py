"""GET /metrics over the real app (in-memory gateways), read with prometheus_client's parser:
every family named and described, requests counted by their route's pattern, instances by
status from the database, deploys and reconciler passes counted; the token when one is set,
loopback peers only when none is."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from db.errors import AccessDenied, AuthenticationFailed
from db.status import Status
from tests.support.metrics_scrape import scrape, value
from tests.support.web_client import serving_pages
from web.metrics import check_scraper
from web.request_metrics import UNMATCHED

OPENAI_KEY = "sk-proj-metricsMETRICS0123456789abcd"
TOKEN = "scrape-" + "x7" * 20


@pytest.fixture
async def api(settings_for, sessions):
    async with serving_pages(settings_for()) as api:
        await api.sign_up()
        yield api


async def _deployed(api) -> str:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    assert (await api.progress(created["id"]))[-1]["done"]
    return created["id"]


async def test_every_family_is_the_platforms_own_and_described(api) -> None:
    families = await scrape(api)
    assert families, "nothing served"
    assert all(name.startswith("clawfleet_") for name in families), sorted(families)
    assert all(family.documentation for family in families.values())
    assert {"clawfleet_http_requests", "clawfleet_http_request_duration_seconds", "clawfleet_bot_updates",
            "clawfleet_deploys_started", "clawfleet_deploys_finished", "clawfleet_deploy_duration_seconds",
            "clawfleet_reconcile_passes", "clawfleet_reconcile_drift", "clawfleet_instances",
            "clawfleet_stripe_events", "clawfleet_model_tokens", "clawfleet_model_errors"} <= set(families)


async def test_requests_are_counted_by_route_pattern_never_by_path(api) -> None:
    instance_id = await _deployed(api)
    for _ in range(3):
        assert (await api.call("GET", f"/api/instances/{instance_id}"))[0] == 200
    assert (await api.call("GET", f"/api/instances/{uuid.uuid4()}"))[0] == 404
    assert (await api.call("GET", f"/no/such/{uuid.uuid4()}"))[0] == 404
    families = await scrape(api)
    routes = {sample.labels["route"] for sample in families["clawfleet_http_requests"].samples}
    assert not any(instance_id in route for route in routes)
    assert value(families, "clawfleet_http_requests_total", route="/api/instances/{id}", method="GET",
                 status="200") == 3
    assert value(families, "clawfleet_http_requests_total", route="/api/instances/{id}", status="404") == 1
    assert value(families, "clawfleet_http_requests_total", route="/api/instances", method="POST", status="202") == 1
    assert value(families, "clawfleet_http_requests_total", route=UNMATCHED, status="404") == 1
    assert value(families, "clawfleet_http_request_duration_seconds_count", route="/api/instances/{id}") == 4


async def test_instances_by_status_deploys_and_reconciler_passes(api) -> None:
    empty = await scrape(api)
    assert {sample.labels["status"]: sample.value for sample in empty["clawfleet_instances"].samples} == \
        {status.value: 0 for status in Status}
    await _deployed(api)
    assert (await api.platform.reconciler.reconcile_once()) is not None
    families = await scrape(api)
    assert value(families, "clawfleet_instances", status="running") == 1
    assert value(families, "clawfleet_instances", status="stopped") == 0
    assert value(families, "clawfleet_deploys_started_total") == 1
    assert value(families, "clawfleet_deploys_finished_total", outcome="succeeded") == 1
    assert value(families, "clawfleet_deploy_duration_seconds_count", outcome="succeeded") == 1
    assert value(families, "clawfleet_reconcile_passes_total") >= 1


async def test_a_gateway_gone_is_drift_the_reconciler_counts(api) -> None:
    instance_id = await _deployed(api)
    await api.platform.runtime.crash(uuid.UUID(instance_id))
    await api.platform.reconciler.reconcile_once()
    await api.platform.manager.wait_idle()
    assert value(await scrape(api), "clawfleet_reconcile_drift_total", act="crashed") == 1


async def test_two_platforms_in_one_process_count_apart(api, settings_for) -> None:
    await _deployed(api)
    async with serving_pages(settings_for()) as other:
        families = await scrape(other)
        assert value(families, "clawfleet_deploys_started_total") == 0


async def test_with_a_token_only_its_bearer_is_answered(settings_for, sessions) -> None:
    async with serving_pages(settings_for(metrics_token=TOKEN)) as api:
        for token in (None, "scrape-wrong", TOKEN + "x"):
            status, body = await api.call("GET", "/metrics", token=token)
            assert status == 401, body
            assert body["error"]["code"] == "unauthorized" and body["error"]["field"] == "Authorization"
            assert TOKEN not in str(body)
        families = await scrape(api, token=TOKEN)
        assert "clawfleet_instances" in families


async def test_without_a_token_a_forwarded_address_changes_nothing(settings_for, sessions) -> None:
    """A loopback peer claiming, through a header, to come from elsewhere is still the peer."""
    async with serving_pages(settings_for(trusted_proxies=["127.0.0.1"])) as api:
        async with api.http.get(api.url("/metrics"), headers={"X-Forwarded-For": "203.0.113.9"}) as response:
            assert response.status == 200


def test_without_a_token_only_loopback_peers_may_scrape() -> None:
    for peer in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        check_scraper(peer, None, None)
    for peer in ("203.0.113.9", "10.0.0.1", "::ffff:192.0.2.1", "2001:db8::1", "", None, "not-an-address"):
        with pytest.raises(AccessDenied, match="CLAWFLEET_METRICS_TOKEN"):
            check_scraper(peer, None, None)


def test_with_a_token_the_peer_does_not_matter_but_the_token_does() -> None:
    token = SecretStr(TOKEN)
    check_scraper("203.0.113.9", TOKEN, token)
    for presented in (None, "", TOKEN[:-1], TOKEN + "x"):
        with pytest.raises(AuthenticationFailed):
            check_scraper("127.0.0.1", presented, token)
