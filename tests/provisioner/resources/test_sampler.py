"""The resource sampler over the real database (SQLite, then PostgreSQL) and the platform's
in-memory gateways: what each round writes, the CPU load between two samples, the latest sample
per running gateway only, a day of history kept, and the fleet's gauges read from them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import LatestResourceSample, ResourceSample
from db.types import utcnow
from provisioner.resources.history import ResourceHistory
from provisioner.resources.sampler import cpu_percent
from provisioner.runtimes.base import ResourceUse
from tests.support.metrics_scrape import scrape, value
from tests.support.web_client import serving_pages

OPENAI_KEY = "sk-proj-samplerSAMPLER0123456789abcd"
MB = 1024 * 1024


@pytest.fixture
async def api(settings_for, sessions):
    # rounds run only when the test asks: the platform's own first one may not find the instance yet
    async with serving_pages(settings_for(resource_sample_interval_s=3600)) as api:
        await api.sign_up()
        yield api


async def _deployed(api) -> uuid.UUID:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    assert (await api.progress(created["id"]))[-1]["done"]
    return uuid.UUID(created["id"])


async def _rows(api, model) -> list:
    async with api.platform.sessions() as session:
        return list(await session.scalars(select(model)))


async def test_a_round_samples_running_gateways_and_the_next_measures_their_cpu(api) -> None:
    instance_id = await _deployed(api)
    sampler = api.platform.resource_sampler
    assert await sampler.run_once() == 1
    [first] = await _rows(api, LatestResourceSample)
    assert first.instance_id == instance_id and first.memory_bytes == 321 * MB and first.cpu_percent is None
    await asyncio.sleep(1.0)
    assert await sampler.run_once() == 1
    [latest] = await _rows(api, LatestResourceSample)
    assert latest.taken_at > first.taken_at
    assert latest.cpu_percent == pytest.approx(10, abs=3)  # the in-memory gateway burns a tenth of a core
    history = await ResourceHistory(api.platform.sessions).last_day(instance_id)
    assert [row.cpu_percent is None for row in history] == [True, False]


async def test_a_stopped_gateway_has_no_latest_sample_and_a_day_old_one_goes(api) -> None:
    instance_id = await _deployed(api)
    async with api.platform.sessions() as session:
        session.add(ResourceSample(instance_id=instance_id, taken_at=utcnow() - timedelta(hours=25),
                                   memory_bytes=1, cpu_percent=None))
        await session.commit()
    await api.platform.resource_sampler.run_once()
    assert len(await _rows(api, ResourceSample)) == 1  # the new one: the day-old one is gone
    assert (await api.call("POST", f"/api/instances/{instance_id}/stop"))[0] == 202
    await api.platform.manager.wait_idle()
    assert await api.platform.resource_sampler.run_once() == 0
    assert await _rows(api, LatestResourceSample) == []
    assert len(await _rows(api, ResourceSample)) == 1  # its history stays for the chart


async def test_the_fleet_gauges_come_from_the_latest_samples(api) -> None:
    families = await scrape(api)
    assert value(families, "clawfleet_gateways_sampled") == 0
    await _deployed(api)
    await api.platform.resource_sampler.run_once()
    families = await scrape(api)
    assert value(families, "clawfleet_gateways_sampled") == 1
    assert value(families, "clawfleet_gateways_memory_bytes") == 321 * MB
    # the instance is given CLAWFLEET_INSTANCE_MEMORY_MB's default, 1536 MB
    assert value(families, "clawfleet_gateway_memory_limit_ratio_max") == pytest.approx(321 / 1536)


async def test_deleting_the_instance_takes_its_samples(api) -> None:
    instance_id = await _deployed(api)
    await api.platform.resource_sampler.run_once()
    assert (await api.call("DELETE", f"/api/instances/{instance_id}?purge=true"))[0] == 202
    await api.platform.manager.wait_idle()
    assert await _rows(api, ResourceSample) == [] and await _rows(api, LatestResourceSample) == []


def test_cpu_load_is_the_cpu_time_over_the_time_between_samples() -> None:
    now = utcnow()
    before = LatestResourceSample(instance_id=uuid.uuid4(), taken_at=now - timedelta(seconds=60), memory_bytes=1,
                                  cpu_seconds=100.0)
    assert cpu_percent(before, ResourceUse(1, 130.0), now) == 50.0
    assert cpu_percent(None, ResourceUse(1, 130.0), now) is None
    assert cpu_percent(before, ResourceUse(1, 2.0), now) is None  # restarted: its count began again
