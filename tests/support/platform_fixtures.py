"""Fixtures of the tests that run the platform: the fake Bot API it checks bot tokens against,
the fake model, and settings on the test's own database and data directory."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clawfleet.settings import Settings
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def model():
    """The fake model provider on loopback, for gateways' model calls."""
    async with FakeModel() as fake:
        yield fake


@pytest.fixture
def settings_for(database_url, tmp_path, telegram) -> Callable[..., Settings]:
    """Settings with these overrides, over the test's database (SQLite, then PostgreSQL)."""

    def make(**overrides) -> Settings:
        values = dict(data_dir=tmp_path, database_url=database_url, telegram_api_url=telegram.api_url,
                      start_timeout_s=5, _env_file=None)
        values.update(overrides)
        return Settings(**values)

    return make
