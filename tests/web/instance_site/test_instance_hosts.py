"""Instance hosts over the real app on loopback, with browsers' cookie rules (`*.localhost`
resolved to loopback): the owner is signed in through the dashboard, everyone else is sent to
sign in or told there is nothing there, in the same words for someone else's instance as for
one that does not exist; each host keeps its own cookie."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from yarl import URL

from db.models import User
from tests.support.api_client import Api
from tests.support.instance_hosts import HostBrowser, csrf_of, site_on_localhost
from tests.support.memory_runtime import MemoryRuntime
from web.instance_site.visitors import cookie_name

KEY = "sk-proj-hosts0hosts0hosts0hosts0hosts0"


@pytest.fixture
async def site(settings_for, sessions):
    async with site_on_localhost(settings_for) as (api, dashboard):
        yield api, dashboard


@pytest.fixture
async def browsers(site):
    opened = []

    def open_one() -> Browser:
        opened.append(HostBrowser(site[1]))
        return opened[-1]

    yield open_one
    for browser in opened:
        await browser.close()


@pytest.fixture
async def owned(site, browsers):
    """Ada's browser, signed in on the dashboard, her account and her running instance."""
    ada = browsers()
    await ada.sign_up("ada@example.com")
    user, instance = await _instance_of(site[0], "ada@example.com")
    return ada, user, instance


async def _stopped(api: Api, user: User, instance) -> None:
    await api.platform.instances.stop(user, instance.id)
    for _ in range(200):
        if (await api.platform.instances.get(user, instance.id)).status == "stopped":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("it did not stop")


async def _user(api: Api, email: str) -> User:
    async with api.platform.sessions() as session:
        return await session.scalar(select(User).where(User.email == email))


async def _instance_of(api: Api, email: str):
    user = await _user(api, email)
    instance = await api.platform.instances.create(user, model_provider="openai", api_key=KEY)
    for _ in range(300):
        instance = await api.platform.instances.get(user, instance.id)
        if instance.status == "running" and api.platform.instances.manager.action_in_progress(instance.id) is None:
            return user, instance
        await asyncio.sleep(0.05)
    raise AssertionError(f"the instance stayed {instance.status}")


def _host(api: Api, subdomain: str) -> str:
    return api.platform.instances.urls.url(subdomain)


async def test_the_owner_lands_on_their_instance_host_signed_in_through_the_dashboard(site, browsers, owned) -> None:
    api, dashboard = site
    ada, user, instance = owned
    await _stopped(api, user, instance)
    host = _host(api, instance.subdomain)

    status, landed, text, _ = await ada.get(f"{host}/some/page?x=1")
    assert status == 503 and landed == f"{host}/some/page?x=1"  # back where it wanted, signed in
    assert "Your assistant is stopped" in text and "Start it" in text
    jar = ada.http.cookie_jar
    assert cookie_name(False) in jar.filter_cookies(URL(host))
    assert cookie_name(False) not in jar.filter_cookies(URL(dashboard))  # host-only: never the dashboard's
    assert "clawfleet_session" not in jar.filter_cookies(URL(host))  # and the dashboard's never here
    assert "clawfleet_session" in jar.filter_cookies(URL(dashboard))


async def test_anyone_without_the_hosts_cookie_is_sent_to_the_dashboards_door(site, browsers, owned) -> None:
    api, dashboard = site
    _, _, instance = owned
    stranger = browsers()
    answers = []
    for subdomain in (instance.subdomain, "claw-0000000000"):
        status, _, _, headers = await stranger.get(f"{_host(api, subdomain)}/", allow_redirects=False)
        answers.append((status, headers["Location"].replace(subdomain, "SUB")))
    assert answers[0] == answers[1] == (303, f"{dashboard}/open/SUB")
    status, landed, _, _ = await stranger.get(f"{_host(api, instance.subdomain)}/")
    assert status == 200 and landed.startswith(f"{dashboard}/login?next=/open/{instance.subdomain}")


async def test_someone_elses_instance_is_the_same_404_as_none(site, browsers) -> None:
    api, _ = site
    ada, bob = browsers(), browsers()
    await ada.sign_up("ada@example.com")
    await bob.sign_up("bob@example.com")
    _, instance = await _instance_of(api, "ada@example.com")
    theirs = await bob.get(f"{_host(api, instance.subdomain)}/")
    nobodys = await bob.get(f"{_host(api, 'claw-0000000000')}/")
    assert theirs[0] == nobodys[0] == 404
    assert theirs[2] == nobodys[2]  # not a word more


async def test_a_websocket_upgrade_without_the_cookie_is_sent_to_the_door_too(site, browsers, owned) -> None:
    api, dashboard = site
    _, _, instance = owned
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    status, _, _, answer = await browsers().get(f"{_host(api, instance.subdomain)}/", headers=headers,
                                                allow_redirects=False)
    assert status == 303 and answer["Location"] == f"{dashboard}/open/{instance.subdomain}"


async def test_signing_out_of_the_dashboard_ends_the_instance_hosts_session(site, browsers, owned) -> None:
    api, dashboard = site
    ada, user, instance = owned
    await _stopped(api, user, instance)
    host = _host(api, instance.subdomain)
    assert (await ada.get(f"{host}/"))[0] == 503
    text = (await ada.get(f"{dashboard}/dashboard"))[2]
    csrf = csrf_of(text)
    async with ada.http.post(f"{dashboard}/logout", data={"csrf_token": csrf}, headers={"Origin": dashboard}):
        pass
    status, _, _, headers = await ada.get(f"{host}/", allow_redirects=False)
    assert status == 303 and headers["Location"] == f"{dashboard}/open/{instance.subdomain}"


async def test_a_one_time_link_works_once_and_on_its_own_host_only(site, browsers, owned) -> None:
    api, dashboard = site
    ada, user, instance = owned
    status, _, _, headers = await ada.get(f"{dashboard}/open/{instance.subdomain}", allow_redirects=False)
    assert status == 303
    link = headers["Location"]
    assert link.startswith(f"{_host(api, instance.subdomain)}/_clawfleet/sign-in?code=cf_link_")
    fresh = browsers()  # whoever holds the link: the link alone signs in, once
    assert (await fresh.get(link, allow_redirects=False))[0] == 303
    status, _, text, _ = await browsers().get(link, allow_redirects=False)
    assert status == 401 and "used already or expired" in text

    status, _, _, headers = await ada.get(f"{dashboard}/open/{instance.subdomain}", allow_redirects=False)
    elsewhere = headers["Location"].replace(instance.subdomain, "claw-0000000000")
    assert (await browsers().get(elsewhere, allow_redirects=False))[0] == 404


async def test_cookies_of_one_side_are_worthless_on_the_other(site, browsers, owned) -> None:
    api, dashboard = site
    ada, user, instance = owned
    await _stopped(api, user, instance)
    host = _host(api, instance.subdomain)
    await ada.get(f"{host}/")
    instance_cookie = ada.http.cookie_jar.filter_cookies(URL(host))[cookie_name(False)].value
    session_cookie = ada.http.cookie_jar.filter_cookies(URL(dashboard))["clawfleet_session"].value

    thief = browsers()
    status, landed, _, _ = await thief.get(f"{dashboard}/dashboard",
                                           headers={"Cookie": f"clawfleet_session={instance_cookie}"})
    assert landed.startswith(f"{dashboard}/login")  # an instance host's cookie is no dashboard session
    status, _, _, headers = await thief.get(f"{host}/", allow_redirects=False,
                                            headers={"Cookie": f"{cookie_name(False)}={session_cookie}"})
    assert status == 303 and "/open/" in headers["Location"]  # nor a dashboard session an instance host's
    status, _, _, _ = await thief.get(f"{host}/", allow_redirects=False,
                                      headers={"Cookie": f"{cookie_name(False)}={instance_cookie}"})
    assert status == 503  # the instance host's own cookie, as sent: it is the owner's credential here


async def test_the_start_button_starts_it_from_this_host_only(site, browsers, owned) -> None:
    api, _ = site
    ada, user, instance = owned
    await _stopped(api, user, instance)
    for _ in range(200):
        if (await api.platform.instances.get(user, instance.id)).status == "stopped":
            break
        await asyncio.sleep(0.05)
    host = _host(api, instance.subdomain)
    text = (await ada.get(f"{host}/"))[2]
    csrf = csrf_of(text)
    async with ada.http.post(f"{host}/_clawfleet/start", data={"csrf_token": csrf},
                             headers={"Origin": "http://evil.localhost"}, allow_redirects=False) as refused:
        assert refused.status == 403
    async with ada.http.post(f"{host}/_clawfleet/start", data={"csrf_token": "0" * 64},
                             headers={"Origin": host}, allow_redirects=False) as refused:
        assert refused.status == 403
    assert (await api.platform.instances.get(user, instance.id)).status == "stopped"
    async with ada.http.post(f"{host}/_clawfleet/start", data={"csrf_token": csrf}, headers={"Origin": host},
                             allow_redirects=False) as started:
        assert started.status == 303
    assert (await api.platform.instances.get(user, instance.id)).status in ("provisioning", "running")


async def test_the_api_url_is_the_instance_host(site, browsers, owned) -> None:
    api, _ = site
    ada, user, instance = owned
    assert api.platform.instances.public_url(instance) == _host(api, instance.subdomain)
    assert api.platform.instances.urls.subdomain_of(URL(_host(api, instance.subdomain)).raw_authority) \
        == instance.subdomain


async def test_a_starting_instance_shows_its_progress_and_a_failed_one_its_reason(settings_for, sessions) -> None:
    async with site_on_localhost(settings_for, MemoryRuntime(never_ready=True), start_timeout_s=2) as (api, dashboard):
        ada = HostBrowser(dashboard)
        try:
            await ada.sign_up("ada@example.com")
            user = await _user(api, "ada@example.com")
            instance = await api.platform.instances.create(user, model_provider="openai", api_key=KEY)
            host = _host(api, instance.subdomain)
            status, _, text, _ = await ada.get(f"{host}/")
            assert status == 503 and "Your assistant is starting" in text
            assert '<meta http-equiv="refresh" content="3">' in text and 'class="steps"' in text
            for _ in range(200):
                if (await api.platform.instances.get(user, instance.id)).status == "error":
                    break
                await asyncio.sleep(0.05)
            status, _, text, headers = await ada.get(f"{host}/")
            assert status == 503 and "Your assistant could not start" in text
            assert "It could not start: The gateway was not ready" in text and "Start it" in text and "refresh" not in text
            assert headers["Content-Security-Policy"].startswith("default-src 'none'; style-src " + dashboard)
        finally:
            await ada.close()


def test_every_status_has_a_heading() -> None:
    from db.status import Status
    from web.instance_site.pages import HEADINGS
    assert set(HEADINGS) == set(Status)
