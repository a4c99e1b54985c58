"""A platform with the process runtime over real OpenClaw gateways, pointed at the loopback fake
Bot API and fake model (no traffic leaves the machine): those fakes, its settings, and the
platform signed up to (`api`, over the test module's own `settings` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawfleet.settings import Settings
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram
from tests.support.api_client import migrated, running_api


@pytest.fixture
async def fakes():
    async with FakeTelegram() as telegram, FakeModel() as model:
        yield telegram, model


def process_settings(tmp_path: Path, openclaw_install, telegram: FakeTelegram, model: FakeModel,
                     **overrides) -> Settings:
    values = dict(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}",
        runtime="process",
        runtime_dir=openclaw_install.root,
        openclaw_version=openclaw_install.version,
        telegram_api_url=telegram.api_url,
        provider_urls={"openai": f"{model.url}/v1", "anthropic": model.url},
        start_timeout_s=150,
    )
    return Settings(**(values | overrides))


@pytest.fixture
async def api(settings):
    await migrated(settings)
    async with running_api(settings) as api:
        await api.sign_up()
        try:
            yield api
        finally:  # a failed test must not leave gateways running
            runtime = api.platform.runtime
            for found in await runtime.list_all():
                await runtime.stop(found.instance_id, found.info, timeout=5)
