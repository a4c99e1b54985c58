"""A real deploy through the process runtime in /metrics and in the resource samples: the
deploy counters and duration histogram move, and the sampler measures the real gateway's
memory (its whole process tree) and, from its second round, its CPU load.

The gateway points its provider at the loopback fake model and has no Telegram channel:
no traffic leaves the machine."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from clawfleet.settings import Settings
from db.models import LatestResourceSample
from provisioner.resources.history import ResourceHistory
from tests.support.api_client import Api
from tests.support.metrics_scrape import scrape, value
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 (fixtures)

OPENAI_KEY = "sk-proj-metricsE2Emetrics0123456789ab"
MB = 1024 * 1024


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes) -> Settings:
    # rounds run when the test asks: the platform's own first one comes before the gateway
    return process_settings(tmp_path, openclaw_install, *fakes, resource_sample_interval_s=3600)


async def test_a_deploy_is_counted_and_timed_and_its_gateway_sampled(api: Api) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    events = await api.progress(created["id"])
    assert events[-1]["done"], events
    families = await scrape(api)
    assert value(families, "clawfleet_deploys_started_total") == 1
    assert value(families, "clawfleet_deploys_finished_total", outcome="succeeded") == 1
    assert value(families, "clawfleet_deploy_duration_seconds_count", outcome="succeeded") == 1
    seconds = value(families, "clawfleet_deploy_duration_seconds_sum", outcome="succeeded")
    assert 1 < seconds < events[-1]["elapsed_ms"] / 1000 + 1
    assert value(families, "clawfleet_instances", status="running") == 1

    sampler, instance_id = api.platform.resource_sampler, uuid.UUID(created["id"])
    assert await sampler.run_once() == 1
    await asyncio.sleep(2)
    assert await sampler.run_once() == 1
    async with api.platform.sessions() as session:
        latest = await session.get(LatestResourceSample, instance_id)
        assert list(await session.scalars(select(LatestResourceSample.instance_id))) == [instance_id]
    assert latest.memory_bytes > 100 * MB  # an idle gateway takes most of a gigabyte
    assert latest.cpu_seconds > 1 and latest.cpu_percent is not None and latest.cpu_percent >= 0
    history = await ResourceHistory(api.platform.sessions).last_day(instance_id)
    assert len(history) == 2 and all(sample.memory_bytes > 100 * MB for sample in history)
    families = await scrape(api)
    assert value(families, "clawfleet_gateways_memory_bytes") == latest.memory_bytes
