"""The HTTPS edge's question before it fetches a certificate on demand, over the real app on
loopback: yes for the dashboard's host and each instance's host, no for every other name."""

from __future__ import annotations

import pytest

from tests.support.api_client import Api
from tests.support.instance_hosts import owned_instance, site_on_localhost


@pytest.fixture
async def site(settings_for, sessions):
    async with site_on_localhost(settings_for) as (api, dashboard):
        yield api, dashboard


async def _asked(api: Api, domain: str | None) -> tuple[int, dict]:
    return await api.call("GET", "/edge/certificate" + ("" if domain is None else f"?domain={domain}"))


async def test_the_dashboard_and_each_instance_host_get_certificates_and_nothing_else(site) -> None:
    api, _ = site
    await api.sign_up("ada@example.com")
    instance = await owned_instance(api, "ada@example.com", "sk-proj-edge0edge0edge0edge0edge0edge0")
    host = f"{instance.subdomain}.localhost"

    assert await _asked(api, "localhost") == (200, {"domain": "localhost", "served": True})
    assert await _asked(api, host.upper() + ".") == (200, {"domain": host, "served": True})
    for stranger in ("claw-0000000000.localhost", "example.com", "a.b." + host, "localhost.evil.example"):
        status, body = await _asked(api, stranger)
        assert status == 404 and body["error"]["field"] == "domain", (stranger, body)
    status, body = await _asked(api, None)
    assert status == 400 and body["error"]["field"] == "domain"

    assert (await api.call("DELETE", f"/api/instances/{instance.id}?purge=true"))[0] == 202
    status, _ = await _asked(api, host)
    assert status == 404  # deleting or gone: no new certificate
