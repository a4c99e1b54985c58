from __future__ import annotations

import pytest

from tests.support.web_client import WebUser, serving_pages


@pytest.fixture
async def site(settings_for, sessions):
    async with serving_pages(settings_for()) as api:
        yield api


@pytest.fixture
async def browser_for(site):
    """New browsers on the site, each with its own cookies."""
    opened: list[WebUser] = []

    def open_one() -> WebUser:
        opened.append(WebUser(site))
        return opened[-1]

    yield open_one
    for user in opened:
        await user.close()
