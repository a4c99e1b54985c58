"""The account pages through the real app over in-memory gateways: each section of /account
(email and password, Telegram, API tokens, sessions, deleting the account), the pages one-time
links open (/forgot-password, /reset-password, /verify-email) and the wizard's Telegram link,
with their error paths. The links are made by the use case the operator's CLI uses, and codes are
redeemed by the one the bot uses."""

from __future__ import annotations

import re

from sqlalchemy import select

from accounts import tokens
from accounts.login_links import RESET_PASSWORD, VERIFY_EMAIL
from accounts.telegram_entry import Sender
from db.models import Instance, User
from tests.support.builders import saved_user
from tests.support.web_client import PASSWORD
from tests.web.pages.owned_instances import created, signed_up

NEW_PASSWORD = "a brand new password"


async def _row(sessions, user_id) -> User | None:
    async with sessions() as session:
        return await session.get(User, user_id)


def _new_token(page) -> str:
    found = re.search(r'class="secret-once">(cf_[A-Za-z0-9_-]+)<', page.text)
    assert found, "no token shown"
    return found.group(1)


def _code(page) -> str:
    found = re.search(r'id="telegram-code">([^<]+)<', page.text)
    assert found, "no code shown"
    return found.group(1)


async def _telegram_only(site, browser_for, sessions, telegram_user_id: int = 777):
    """A browser signed in to an account made by the bot: no email, no password."""
    user = await saved_user(sessions, email=None, password_hash=None, telegram_user_id=telegram_user_id,
                            telegram_chat_id=telegram_user_id)
    async with sessions() as session:
        issued = tokens.issue(session, user, kind="session", name="login")
        await session.commit()
    person = browser_for()
    person.http.cookie_jar.update_cookies({"clawfleet_session": issued.token}, response_url=site.server.make_url("/"))
    return person, user


async def test_the_account_page_needs_a_signed_in_person(browser_for) -> None:
    page = await browser_for().get("/account", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login?next=/account"


async def test_changing_the_email_needs_the_current_password_and_unproves_it(browser_for, sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    page = await person.get("/account")
    assert page.status == 200 and page.has("ada@example.com") and page.has("not proven yet")

    wrong = await person.submit("/account", {"email": "ada@new.example", "email_current_password": "nope nope nope"},
                                action="/account/email")
    assert wrong.status == 401 and wrong.has("That is not your current password.")
    assert 'id="email-current-password-error"' not in wrong.text and 'id="email_current_password-error"' in wrong.text
    assert 'value="ada@new.example"' in wrong.text and "nope nope nope" not in wrong.text  # kept, all but the password

    bad = await person.submit("/account", {"email": "not an email", "email_current_password": PASSWORD},
                              action="/account/email")
    assert bad.status == 400 and 'id="email-error"' in bad.text and bad.has("Enter a valid email address")

    done = await person.submit("/account", {"email": "ada@new.example", "email_current_password": PASSWORD},
                               action="/account/email")
    assert done.status == 200 and done.has("Your email is changed") and done.has("ada@new.example")
    assert (await _row(sessions, user.id)).email == "ada@new.example"


async def test_an_email_taken_by_another_account_is_refused_next_to_the_field(browser_for) -> None:
    await signed_up(browser_for, "bob@example.com")
    person, _ = await signed_up(browser_for, "ada@example.com")
    page = await person.submit("/account", {"email": "bob@example.com", "email_current_password": PASSWORD},
                               action="/account/email")
    assert page.status == 409 and page.has("Another account has this email already.") and 'id="email-error"' in page.text


async def test_a_proof_link_without_a_channel_says_so_and_a_proof_link_proves_the_email(site, browser_for,
                                                                                        sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    page = await person.submit("/account", {}, action="/account/email-proof")
    assert page.status == 409 and 'class="alert alert-error"' in page.text  # this platform sends no email
    message = site.platform.account_links.delivery.no_channel(VERIFY_EMAIL).message
    assert page.has(message)

    link = await site.platform.account_links.operator_link("ada@example.com", VERIFY_EMAIL)
    token = link.url.split("token=", 1)[1]
    opened = await person.get(f"/verify-email?token={token}")
    assert opened.status == 200 and opened.has("Confirm my email")
    assert (await _row(sessions, user.id)).email_verified_at is None  # opening the link does nothing yet
    proven = await person.post("/verify-email", {"token": token}, csrf=opened.csrf)
    assert proven.status == 200 and proven.has("Your email is proven.")
    assert (await _row(sessions, user.id)).email_verified_at is not None
    assert (await person.get("/account")).has("proven")

    used = await person.post("/verify-email", {"token": token}, csrf=opened.csrf)
    assert used.status == 400 and used.has("used already") and not used.has("Your email is proven.")
    bad = await person.post("/verify-email", {"token": "cf_link_nothing"}, csrf=opened.csrf)
    assert bad.status == 400 and 'class="alert alert-error"' in bad.text


async def test_changing_the_password_signs_out_the_other_sessions(site, browser_for) -> None:
    person, _ = await signed_up(browser_for, "ada@example.com")
    other = browser_for()
    await other.submit("/login", {"email": "ada@example.com", "password": PASSWORD})
    assert (await other.get("/account")).status == 200

    wrong = await person.submit("/account", {"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD},
                                action="/account/password")
    assert wrong.status == 401 and 'id="current_password-error"' in wrong.text and NEW_PASSWORD not in wrong.text
    short = await person.submit("/account", {"current_password": PASSWORD, "new_password": "short"},
                                action="/account/password")
    assert short.status == 400 and 'id="new_password-error"' in short.text

    done = await person.submit("/account", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                               action="/account/password")
    assert done.status == 200 and done.has("Your password is changed")
    assert (await person.get("/account")).status == 200  # this browser stays signed in
    assert "/login" in (await other.get("/account")).url  # the other one is signed out
    status, _ = await site.call("POST", "/api/auth/login", {"email": "ada@example.com", "password": NEW_PASSWORD},
                                token="-")
    assert status == 200


async def test_a_wrong_current_password_again_and_again_is_throttled_in_words(settings_for, sessions) -> None:
    from tests.support.web_client import WebUser, serving_pages

    async with serving_pages(settings_for(auth_failures_per_account=2)) as api:
        person = WebUser(api)
        try:
            await person.sign_up("ada@example.com")
            statuses = []
            for _ in range(3):
                page = await person.submit("/account", {"current_password": "wrong wrong wrong",
                                                        "new_password": NEW_PASSWORD}, action="/account/password")
                statuses.append(page.status)
            assert statuses == [401, 401, 429]
            assert page.has("try again in") and "Retry-After" in page.headers
        finally:
            await person.close()


async def test_a_telegram_code_links_the_account_and_unlinking_it_works(site, browser_for, sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    page = await person.get("/account")
    assert page.has("Link your Telegram account") and page.has("Make a link code")
    shown = await person.post("/account/telegram/code", {}, csrf=page.csrf)
    assert shown.status == 200
    code = _code(shown)
    assert 't.me/' not in shown.text  # this platform runs no bot of its own: no deep link

    await site.platform.account_links.link_telegram(Sender(telegram_user_id=4242, chat_id=4242, username="ada"), code)
    linked = await person.get("/account")
    assert linked.has("Linked to @ada (Telegram id 4242)") and linked.has("Unlink Telegram")

    unlinked = await person.post("/account/telegram/unlink", {}, csrf=linked.csrf)
    assert unlinked.status == 200 and unlinked.has("Your Telegram account is unlinked.")
    assert (await _row(sessions, user.id)).telegram_user_id is None


async def test_unlinking_the_only_way_in_is_refused_in_words(site, browser_for, sessions) -> None:
    person, user = await _telegram_only(site, browser_for, sessions)
    page = await person.get("/account")
    assert page.has("Telegram id 777")
    refused = await person.post("/account/telegram/unlink", {}, csrf=page.csrf)
    assert refused.status == 409 and refused.has("Set an email and a password first.")
    assert (await _row(sessions, user.id)).telegram_user_id == 777


async def test_an_api_token_is_shown_once_works_as_a_bearer_and_stops_when_revoked(site, browser_for) -> None:
    person, _ = await signed_up(browser_for, "ada@example.com")
    nameless = await person.submit("/account", {"token_name": "  "}, action="/account/tokens")
    assert nameless.status == 400 and 'id="token_name-error"' in nameless.text and nameless.has("Name the token")

    made = await person.submit("/account", {"token_name": "backup script", "can_manage_tokens": "1"},
                               action="/account/tokens")
    assert made.status == 201 and made.has("shown this once") and made.headers["Cache-Control"] == "no-store"
    token = _new_token(made)
    assert (await site.call("GET", "/api/me", token=token))[0] == 200
    status, body = await site.call("GET", "/api/tokens", token=token)
    assert status == 200 and body["tokens"][0]["can_manage_tokens"] is True

    again = await person.get("/account")
    assert token not in again.text and "secret-once" not in again.text  # a reload no longer shows it
    assert again.has("backup script") and again.has(token[:10]) and again.has("manages tokens")
    assert re.search(r"<td data-label=\"Created\"><time [^>]+>\d{4}-\d\d-\d\d \d\d:\d\d UTC</time></td>", again.text)  # created, last used

    revoke = re.search(r'action="(/account/tokens/[0-9a-f-]+/revoke)"', again.text).group(1)
    gone = await person.post(revoke, {}, csrf=again.csrf)
    assert gone.status == 200 and gone.has("The API token is revoked") and gone.has("No API tokens yet.")
    assert (await site.call("GET", "/api/me", token=token))[0] == 401
    twice = await person.post(revoke, {}, csrf=again.csrf)
    assert twice.status == 404 and twice.has("No such API token.")


async def test_someone_elses_token_cannot_be_revoked(site, browser_for) -> None:
    bob, _ = await signed_up(browser_for, "bob@example.com")
    made = await bob.submit("/account", {"token_name": "bob's"}, action="/account/tokens")
    revoke = re.search(r'action="(/account/tokens/[0-9a-f-]+/revoke)"', (await bob.get("/account")).text).group(1)
    ada, _ = await signed_up(browser_for, "ada@example.com")
    page = await ada.get("/account")
    assert (await ada.post(revoke, {}, csrf=page.csrf)).status == 404
    assert (await site.call("GET", "/api/me", token=_new_token(made)))[0] == 200


async def test_signing_out_everywhere_ends_every_session(site, browser_for) -> None:
    person, _ = await signed_up(browser_for, "ada@example.com")
    other = browser_for()
    await other.submit("/login", {"email": "ada@example.com", "password": PASSWORD})
    api_token = _new_token(await person.submit("/account", {"token_name": "script"}, action="/account/tokens"))

    out = await person.submit("/account", {}, action="/account/sessions/end")
    assert out.status == 200 and out.url.endswith("/login")
    assert "/login" in (await person.get("/account")).url
    assert "/login" in (await other.get("/account")).url
    assert (await site.call("GET", "/api/me", token=api_token))[0] == 200  # API tokens are kept


async def test_deleting_the_account_takes_its_instances_and_signs_out(site, browser_for, sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    instance = await created(site, user)
    runtime = site.platform.manager.runtime
    assert [listed.instance_id for listed in await runtime.list_all()] == [instance.id]
    page = await person.get("/account/delete")
    assert page.status == 200 and page.has(instance.subdomain) and page.has("Your password, to confirm")

    wrong = await person.post("/account/delete", {"password": "wrong wrong wrong"}, csrf=page.csrf)
    assert wrong.status == 401 and 'id="password-error"' in wrong.text
    assert await _row(sessions, user.id) is not None

    gone = await person.post("/account/delete", {"password": PASSWORD}, csrf=page.csrf)
    assert gone.status == 200 and gone.url.endswith("/?deleted=1")
    assert gone.has("Your account and its assistants are deleted.") and gone.has("Sign up")
    assert await _row(sessions, user.id) is None
    async with sessions() as session:
        assert (await session.scalars(select(Instance).where(Instance.id == instance.id))).first() is None
    assert await runtime.list_all() == []  # its gateway is stopped and gone
    assert "/login" in (await person.get("/account")).url


async def test_an_account_without_a_password_is_told_to_set_one_before_deleting(site, browser_for, sessions) -> None:
    person, user = await _telegram_only(site, browser_for, sessions)
    page = await person.get("/account/delete")
    assert page.has("Set a password under Email and password first") and 'id="delete-form"' not in page.text
    refused = await person.post("/account/delete", {}, csrf=page.csrf)
    assert refused.status == 409 and await _row(sessions, user.id) is not None


async def test_forgot_password_answers_alike_for_any_email_and_checks_the_field(browser_for) -> None:
    await signed_up(browser_for, "ada@example.com")
    stranger = browser_for()
    known = await stranger.submit("/forgot-password", {"email": "ada@example.com"})
    unknown = await stranger.submit("/forgot-password", {"email": "nobody@example.com"})
    assert known.status == unknown.status == 200
    assert known.has("If an account has this email") and unknown.has("If an account has this email")
    bad = await stranger.submit("/forgot-password", {"email": "nope"})
    assert bad.status == 400 and 'id="email-error"' in bad.text and 'value="nope"' in bad.text


async def test_forgot_password_is_throttled_in_words(settings_for, sessions) -> None:
    from tests.support.web_client import WebUser, serving_pages

    async with serving_pages(settings_for(auth_failures_per_account=2)) as api:
        person = WebUser(api)
        try:
            pages = [await person.submit("/forgot-password", {"email": "ada@example.com"}) for _ in range(3)]
            assert [page.status for page in pages] == [200, 200, 429]
            assert pages[-1].has("try again in") and 'value="ada@example.com"' in pages[-1].text
        finally:
            await person.close()


async def test_a_reset_link_sets_the_password_once(site, browser_for) -> None:
    await signed_up(browser_for, "ada@example.com")
    link = await site.platform.account_links.operator_link("ada@example.com", RESET_PASSWORD)
    token = link.url.split("token=", 1)[1]
    stranger = browser_for()
    opened = await stranger.get(f"/reset-password?token={token}")
    assert opened.status == 200 and f'name="token" value="{token}"' in opened.text

    short = await stranger.post("/reset-password", {"token": token, "password": "short"}, csrf=opened.csrf)
    assert short.status == 400 and 'id="password-error"' in short.text and f'value="{token}"' in short.text

    done = await stranger.post("/reset-password", {"token": token, "password": NEW_PASSWORD}, csrf=opened.csrf)
    assert done.url.endswith("/login?reset=1") and done.has("Your password is set")
    status, _ = await site.call("POST", "/api/auth/login", {"email": "ada@example.com", "password": NEW_PASSWORD},
                                token="-")
    assert status == 200

    used = await stranger.post("/reset-password", {"token": token, "password": "yet another password"},
                               csrf=opened.csrf)
    assert used.status == 400 and used.has("used already") and used.has("Ask for a new link")
    bad = await stranger.post("/reset-password", {"token": "cf_link_nothing", "password": NEW_PASSWORD},
                              csrf=opened.csrf)
    assert bad.status == 400 and 'class="alert alert-error"' in bad.text


async def test_a_form_without_its_csrf_token_is_refused(browser_for, sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    for path, fields in (("/account/tokens", {"token_name": "x"}), ("/account/sessions/end", {}),
                         ("/account/delete", {"password": PASSWORD})):
        page = await person.post(path, fields)
        assert page.status == 403, path
    assert await _row(sessions, user.id) is not None
    assert (await person.get("/account")).has("No API tokens yet.")


async def test_the_wizard_links_telegram_with_a_code(site, browser_for, sessions) -> None:
    person, user = await signed_up(browser_for, "ada@example.com")
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
    await person.submit("/onboard/key", {"api_key": "sk-proj-canaryCANARYcanary0123456789"})
    step = await person.get("/onboard/telegram")
    assert step.has("Link with the bot") and 'form="onboard-link-form"' in step.text
    shown = await person.post("/onboard/telegram/link", {}, csrf=step.csrf)
    assert shown.status == 200 and shown.has("Step 3 of 4")
    code = _code(shown)
    await site.platform.account_links.link_telegram(Sender(telegram_user_id=4242, chat_id=4242, username="ada"), code)
    again = await person.get("/onboard/telegram")
    assert again.has("Your Telegram account is linked (id 4242)") and not again.has("Link with the bot")
