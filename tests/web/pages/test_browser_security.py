"""What keeps another site from acting in a signed-in person's name, and what every response
tells the browser: forms need our Origin and the session's CSRF token, cookies are HttpOnly and
SameSite, and every page and API answer carries the security headers."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.api_client import running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.web_client import WebUser
from web.csrf import csrf_token


async def test_a_signed_in_form_without_the_csrf_token_is_refused_and_changes_nothing(browser_for, site) -> None:
    person = browser_for()
    await person.sign_up("ada@example.com")
    token = person.cookie("clawfleet_session")
    refused = await person.post("/logout", {}, csrf="")
    assert refused.status == 403 and refused.has("expired")
    wrong = await person.post("/logout", {}, csrf=csrf_token("cf_someone-else"))
    assert wrong.status == 403
    assert await site.platform.accounts.user_for_token(token) is not None  # still signed in
    signed_out = await person.post("/logout", {}, csrf=csrf_token(token))
    assert signed_out.url.endswith("/login")


async def test_a_form_posted_from_another_site_is_refused_even_with_the_token(browser_for, site) -> None:
    person = browser_for()
    await person.sign_up("bob@example.com")
    token = person.cookie("clawfleet_session")
    for origin in ("https://evil.example", "null", None):
        page = await person.post("/logout", {}, csrf=csrf_token(token), origin=origin)
        assert page.status == 403 and page.has("another site"), origin
    assert await site.platform.accounts.user_for_token(token) is not None


async def test_sign_up_from_another_site_is_refused(browser_for, site) -> None:
    page = await browser_for().post("/signup", {"email": "x@example.com", "password": "correct horse battery"},
                                    origin="https://evil.example")
    assert page.status == 403


async def test_the_api_with_the_cookie_needs_the_csrf_header_and_a_bearer_token_needs_none(browser_for, site) -> None:
    person = browser_for()
    await person.sign_up("cy@example.com")
    cookie = person.cookie("clawfleet_session")
    async with person.http.post(site.url("/api/auth/logout"), headers={"Origin": person.origin}) as response:
        assert response.status == 403
        assert (await response.json())["error"]["field"] == "X-CSRF-Token"
    async with person.http.get(site.url("/api/instances")) as response:
        assert response.status == 200  # reading needs no token
    async with aiohttp.ClientSession() as api_client:  # an API client: no cookie, no Origin
        headers = {"Authorization": f"Bearer {cookie}"}
        async with api_client.post(site.url("/api/auth/logout"), headers=headers) as response:
            assert response.status == 204


async def test_an_api_token_is_not_a_session_cookie(browser_for, site) -> None:
    person = browser_for()
    async with site.platform.sessions() as session:
        from accounts import tokens
        from sqlalchemy import select
        from db.models import User
        await site.sign_up("dee@example.com")
        user = await session.scalar(select(User).where(User.email == "dee@example.com"))
        issued = tokens.issue(session, user, kind="api", name="script")
        await session.commit()
    person.http.cookie_jar.update_cookies({"clawfleet_session": issued.token}, response_url=site.server.make_url("/"))
    page = await person.get("/billing")
    assert page.url.endswith("/login?next=/billing")  # an API token in the cookie signs nobody in


async def test_session_cookie_is_httponly_lax_and_host_only_over_http(browser_for) -> None:
    person = browser_for()
    async with person.http.post(person.api.url("/signup"), data={"email": "eve@example.com",
                                                                  "password": "correct horse battery"},
                                headers={"Origin": person.origin}, allow_redirects=False) as response:
        assert response.status == 303
        set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("clawfleet_session=cf_")
    lowered = set_cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "domain=" not in lowered and "secure" not in lowered


async def test_over_https_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(settings_for, sessions) -> None:
    runtime = MemoryRuntime()
    try:
        async with running_api(settings_for(public_url="https://clawfleet.example"), runtime) as api:
            person = WebUser(api)
            try:
                async with person.http.post(api.url("/signup"), data={"email": "fay@example.com",
                                                                        "password": "correct horse battery"},
                                            headers={"Origin": "https://clawfleet.example"},
                                            allow_redirects=False) as response:
                    assert response.status == 303
                    set_cookie = response.headers["Set-Cookie"]
                    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            finally:
                await person.close()
    finally:
        await runtime.close()
    assert set_cookie.startswith("__Host-clawfleet_session=cf_")
    assert "secure" in set_cookie.lower() and "domain=" not in set_cookie.lower()


@pytest.mark.parametrize("path", ["/", "/login", "/api/instances", "/healthz", "/no-such-page", "/static/app.css"])
async def test_every_response_carries_the_security_headers(browser_for, path) -> None:
    page = await browser_for().get(path)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in page.headers  # plain HTTP: a laptop


async def test_an_unknown_page_is_a_page_and_an_unknown_api_route_is_json(browser_for) -> None:
    person = browser_for()
    page = await person.get("/no-such-page")
    assert page.status == 404 and page.headers["Content-Type"].startswith("text/html") and page.has("Page not found")
    api = await person.get("/api/no-such-route")
    assert api.status == 404 and api.headers["Content-Type"].startswith("application/json")
