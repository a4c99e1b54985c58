"""Sign-up, sign-in and sign-out through the real pages: sessions in a cookie, errors next to
their field with what was typed kept (but never a password), a new session at each sign-in."""

from __future__ import annotations

from tests.support.web_client import PASSWORD


async def test_the_start_page_invites_to_sign_up(browser_for) -> None:
    page = await browser_for().get("/")
    assert page.status == 200
    assert page.has("Create your assistant") and 'href="/signup"' in page.text
    assert page.headers["Content-Type"].startswith("text/html")


async def test_sign_up_starts_a_session_and_goes_to_the_wizard(browser_for) -> None:
    person = browser_for()
    page = await person.sign_up("ada@example.com")
    assert page.status == 200 and page.url.endswith("/onboard") and page.has("provider")
    token = person.cookie("clawfleet_session")
    assert token and token.startswith("cf_")
    dashboard = await person.get("/billing")
    assert dashboard.status == 200 and dashboard.has("Sign out")


async def test_a_bad_sign_up_names_the_field_and_keeps_the_email_but_not_the_password(browser_for) -> None:
    person = browser_for()
    page = await person.submit("/signup", {"email": "ada@example.com", "password": "short"})
    assert page.status == 400
    assert page.has("at least 10") and 'aria-invalid="true"' in page.text
    assert 'value="ada@example.com"' in page.text and "short" not in page.text.replace("shorter", "")
    both = await person.submit("/signup", {"email": "ada@", "password": "short"})
    assert both.has("Enter a valid email address") and both.has("at least 10")  # every problem at once
    assert person.cookie("clawfleet_session") is None


async def test_sign_in_with_a_wrong_password_says_so_and_a_right_one_signs_in(browser_for, site) -> None:
    await site.sign_up("bob@example.com")
    person = browser_for()
    wrong = await person.submit("/login", {"email": "bob@example.com", "password": "not the password"})
    assert wrong.status == 401 and wrong.has("Wrong email or password.") and 'value="bob@example.com"' in wrong.text
    right = await person.submit("/login", {"email": "bob@example.com", "password": PASSWORD, "next": "/billing"})
    assert right.status == 200 and right.url.endswith("/billing")


async def test_each_sign_in_is_a_new_session_and_the_old_one_is_revoked(browser_for, site) -> None:
    await site.sign_up("cy@example.com")
    person = browser_for()
    await person.submit("/login", {"email": "cy@example.com", "password": PASSWORD})
    first = person.cookie("clawfleet_session")
    await person.submit("/login?next=/billing", {"email": "cy@example.com", "password": PASSWORD}, action="/login")
    second = person.cookie("clawfleet_session")
    assert first and second and first != second
    assert await site.platform.accounts.user_for_token(first) is None
    assert await site.platform.accounts.user_for_token(second) is not None


async def test_sign_out_revokes_the_session(browser_for, site) -> None:
    person = browser_for()
    await person.sign_up("dee@example.com")
    token = person.cookie("clawfleet_session")
    page = await person.submit("/billing", {}, action="/logout")
    assert page.url.endswith("/login")
    assert await site.platform.accounts.user_for_token(token) is None
    assert (await person.get("/billing")).url.endswith("/login?next=/billing")


async def test_next_never_leads_to_another_site(browser_for, site) -> None:
    await site.sign_up("eve@example.com")
    person = browser_for()
    for next_path in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        page = await person.submit("/login", {"email": "eve@example.com", "password": PASSWORD, "next": next_path})
        assert page.url.endswith("/dashboard") or "/dashboard" in page.url, (next_path, page.url)
