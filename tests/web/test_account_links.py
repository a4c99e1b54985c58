"""Email proofs, password resets and Telegram link codes over the real app on loopback, the
emails through a real SMTP server on loopback: each link is read out of its mail and redeemed
through the API, as its owner would. SQLite and PostgreSQL both."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from accounts import tokens
from db.errors import AccessDenied
from db.models import LoginLink, User
from tests.support.api_client import Api, running_api
from tests.support.builders import saved_user
from tests.support.smtp import USER, Mailbox, link_in, mailbox, token_of  # noqa: F401 (a fixture)

PASSWORD = "correct horse battery"
PUBLIC = "http://dash.example.test"


def mailing(settings_for, mailbox: Mailbox, **overrides):
    return settings_for(smtp_url=mailbox.url, smtp_from="ClawFleet <noreply@example.com>", public_url=PUBLIC,
                        **overrides)


async def _user(sessions, email: str) -> User:
    async with sessions() as session:
        return await session.scalar(select(User).where(User.email == email))


async def _login(api: Api, email: str, password: str) -> int:
    return (await api.call("POST", "/api/auth/login", {"email": email, "password": password}, token="-"))[0]


async def test_a_reset_link_from_the_mail_sets_the_password_once_and_signs_everyone_out(
        settings_for, sessions, mailbox, runtime) -> None:
    async with running_api(mailing(settings_for, mailbox), runtime) as api:
        ada_session = await api.sign_up("ada@example.com")
        await api.sign_up("bob@example.com")
        status, body = await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-")
        assert status == 202
        mail = await mailbox.mail_to("ada@example.com")
        assert mail["Subject"] == "Reset your ClawFleet password" and mail["From"] == "ClawFleet <noreply@example.com>"
        assert mailbox.logins == [USER]  # the URL's user and (percent-encoded) password
        link = link_in(mail)
        assert link.startswith(f"{PUBLIC}/reset-password?token=cf_link_")
        assert "within an hour" in mail.get_content()

        new = {"token": token_of(link), "password": "a brand new password"}
        assert (await api.call("POST", "/api/auth/password-reset/confirm", new, token="-"))[0] == 204
        assert (await api.call("GET", "/api/instances", token=ada_session))[0] == 401  # signed out
        assert await _login(api, "ada@example.com", "a brand new password") == 200
        assert await _login(api, "ada@example.com", PASSWORD) == 401
        assert await _login(api, "bob@example.com", PASSWORD) == 200  # the link was Ada's: Bob's is as it was

        again = {"token": token_of(link), "password": "yet another password"}
        status, body = await api.call("POST", "/api/auth/password-reset/confirm", again, token="-")
        assert (status, body["error"]["field"]) == (400, "token")
        assert "used already" in body["error"]["message"]


async def test_a_reset_for_an_unknown_email_answers_the_same_and_sends_nothing(settings_for, sessions,
                                                                              mailbox, runtime) -> None:
    async with running_api(mailing(settings_for, mailbox), runtime) as api:
        await api.sign_up("ada@example.com")
        unknown = await api.call("POST", "/api/auth/password-reset", {"email": "nobody@example.com"}, token="-")
        known = await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-")
        assert unknown == known and known[0] == 202
        await mailbox.mail_to("ada@example.com")
        assert [mail["To"] for mail in mailbox.received] == ["ada@example.com"]
        status, body = await api.call("POST", "/api/auth/password-reset", {"email": "not an email"}, token="-")
        assert (status, body["error"]["field"]) == (400, "email")


async def test_reset_requests_are_throttled_per_email(settings_for, sessions, mailbox, runtime) -> None:
    async with running_api(mailing(settings_for, mailbox, auth_failures_per_account=2), runtime) as api:
        asks = [(await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-"))[0]
                for _ in range(3)]
        assert asks == [202, 202, 429]
        other = await api.call("POST", "/api/auth/password-reset", {"email": "bob@example.com"}, token="-")
        assert other[0] == 202


async def test_a_reset_link_for_one_account_sets_no_other_password_and_expires(settings_for, sessions,
                                                                              mailbox, runtime) -> None:
    async with running_api(mailing(settings_for, mailbox), runtime) as api:
        await api.sign_up("ada@example.com")
        await api.sign_up("bob@example.com")
        await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-")
        token = token_of(link_in(await mailbox.mail_to("ada@example.com")))
        # the body names no account: whoever holds Ada's link can set Ada's password only
        status, body = await api.call("POST", "/api/auth/password-reset/confirm",
                                      {"token": token, "password": "a brand new password", "email": "bob@example.com"},
                                      token="-")
        assert (status, body["error"]["field"]) == (400, "email")  # an unknown field, refused whole
        async with sessions() as session:
            past = datetime.now(timezone.utc) - timedelta(seconds=1)
            await session.execute(update(LoginLink).values(expires_at=past))
            await session.commit()
        status, body = await api.call("POST", "/api/auth/password-reset/confirm",
                                      {"token": token, "password": "a brand new password"}, token="-")
        assert (status, body["error"]["field"]) == (400, "token") and "expired" in body["error"]["message"]
        assert await _login(api, "ada@example.com", PASSWORD) == 200
        assert await _login(api, "bob@example.com", PASSWORD) == 200


async def test_an_email_proof_from_the_mail_lets_a_listed_email_past_the_allowlist(settings_for, sessions,
                                                                                   mailbox, runtime) -> None:
    allowlist = mailing(settings_for, mailbox, access="allowlist", allowed_emails=["ada@example.com"])
    async with running_api(allowlist, runtime) as api:
        await api.sign_up("ada@example.com")
        ada = await _user(sessions, "ada@example.com")
        try:
            await api.platform.access.check(ada)
            raise AssertionError("an unproven email got past the allowlist")
        except AccessDenied as refused:
            assert "not verified" in refused.message

        assert await api.call("POST", "/api/me/email-proof") == (202, {"sent_by": "email"})
        mail = await mailbox.mail_to("ada@example.com")
        link = link_in(mail)
        assert link.startswith(f"{PUBLIC}/verify-email?token=")
        assert "ada@example.com is your address" in mail.get_content()
        assert (await api.call("POST", "/api/auth/email-proof/confirm", {"token": token_of(link)}, token="-"))[0] == 204

        ada = await _user(sessions, "ada@example.com")
        assert ada.email_verified_at is not None
        await api.platform.access.check(ada)  # admitted now
        status, _ = await api.call("POST", "/api/auth/email-proof/confirm", {"token": token_of(link)}, token="-")
        assert status == 400  # once only


async def test_a_proof_for_an_old_email_is_refused_after_the_email_changed(settings_for, sessions,
                                                                           mailbox, runtime) -> None:
    async with running_api(mailing(settings_for, mailbox), runtime) as api:
        await api.sign_up("ada@example.com")
        await api.call("POST", "/api/me/email-proof")
        token = token_of(link_in(await mailbox.mail_to("ada@example.com")))
        async with sessions() as session:
            await session.execute(update(User).values(email="ada@elsewhere.example"))
            await session.commit()
        status, body = await api.call("POST", "/api/auth/email-proof/confirm", {"token": token}, token="-")
        assert (status, body["error"]["field"]) == (400, "token")
        assert "no longer has" in body["error"]["message"]
        assert (await _user(sessions, "ada@elsewhere.example")).email_verified_at is None


async def test_without_mail_or_bot_a_proof_says_to_ask_the_operator(settings_for, sessions, runtime) -> None:
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up("ada@example.com")
        status, body = await api.call("POST", "/api/me/email-proof")
        assert (status, body["error"]["code"]) == (409, "conflict")
        assert "Ask its operator" in body["error"]["message"]
        assert (await api.call("POST", "/api/me/email-proof", token="-"))[0] == 401
        # a reset has no channel either: the same 202, and nothing made
        assert (await api.call("POST", "/api/auth/password-reset", {"email": "ada@example.com"}, token="-"))[0] == 202
        await api.platform.account_links.close()
        async with sessions() as session:  # the admin setup link of a platform without an admin aside
            assert list(await session.scalars(select(LoginLink).where(LoginLink.user_id.is_not(None)))) == []


async def test_a_telegram_code_without_the_bot_has_no_deep_link_and_voids_the_last(settings_for, sessions,
                                                                                  runtime) -> None:
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up("ada@example.com")
        status, first = await api.call("POST", "/api/me/telegram-link")
        assert status == 201 and first["deep_link"] is None
        assert first["code"].startswith("link-") and len(first["code"]) == 15
        _, second = await api.call("POST", "/api/me/telegram-link")
        async with sessions() as session:
            hashes = list(await session.scalars(select(LoginLink.token_hash).where(LoginLink.user_id.is_not(None))))
        assert hashes == [tokens.hash_token(second["code"])]  # stored hashed; the first one voided
        assert (await api.call("POST", "/api/me/telegram-link", token="-"))[0] == 401


async def test_unlinking_telegram_needs_another_way_in(settings_for, sessions, runtime) -> None:
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up("ada@example.com")
        async with sessions() as session:
            await session.execute(update(User).values(telegram_user_id=4242, telegram_chat_id=4242))
            await session.commit()
        assert (await api.call("DELETE", "/api/me/telegram"))[0] == 204
        assert (await _user(sessions, "ada@example.com")).telegram_user_id is None

        only_telegram = await saved_user(sessions, email=None, password_hash=None, telegram_user_id=777)
        async with sessions() as session:
            issued = tokens.issue(session, only_telegram, kind="session", name="login")
            await session.commit()
        status, body = await api.call("DELETE", "/api/me/telegram", token=issued.token)
        assert status == 409 and "could never sign in" in body["error"]["message"]
