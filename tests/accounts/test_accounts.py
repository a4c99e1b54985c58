"""Accounts on their own, against the real database: passwords, tokens, one-time login links and
the access policy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from accounts.access import AccessConfig, AccessPolicy
from accounts.invites import Invites
from accounts.login_links import LINK_PREFIX, LoginLinks
from accounts.passwords import hash_password, valid_password, verify_password
from accounts.tokens import hash_token
from accounts.users import Accounts
from db.errors import AccessDenied, AuthenticationFailed, Conflict, InvalidInput
from db.models import ApiToken, AuditLog, Invite, LoginLink, User
from db.redaction import redact
from tests.support.builders import saved_user


def test_passwords_are_hashed_with_argon2id_and_checked() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "Correct horse battery")
    assert not verify_password("$argon2id$damaged", "correct horse battery")
    with pytest.raises(InvalidInput, match="at least 10"):
        valid_password("short")
    with pytest.raises(InvalidInput, match="too long"):
        valid_password("x" * 1025)


async def test_register_login_and_logout_with_tokens_stored_hashed(sessions) -> None:
    accounts = Accounts(sessions)
    user, issued = await accounts.register(" Ada@Example.com ", "correct horse battery")
    assert user.email == "ada@example.com"
    with pytest.raises(Conflict):
        await accounts.register("ada@example.com", "another long password")
    with pytest.raises(AuthenticationFailed):
        await accounts.login("ada@example.com", "wrong password!")
    second = await accounts.login("ADA@example.com", "correct horse battery")
    async with sessions() as session:
        stored = set(await session.scalars(select(ApiToken.token_hash).where(ApiToken.user_id == user.id)))
    assert stored == {hash_token(issued.token), hash_token(second.token)}

    assert (await accounts.user_for_token(second.token)).id == user.id
    await accounts.logout(second.token)
    assert await accounts.user_for_token(second.token) is None
    assert (await accounts.user_for_token(issued.token)).id == user.id
    assert await accounts.user_for_token("not-a-token") is None


async def _token(sessions, token: str) -> ApiToken | None:
    async with sessions() as session:
        return await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))


async def test_a_token_s_last_use_is_written_once_a_minute_at_most(sessions) -> None:
    accounts = Accounts(sessions)
    _, issued = await accounts.register("ada@example.com", "correct horse battery")
    assert (await _token(sessions, issued.token)).last_used_at is None
    await accounts.user_for_token(issued.token)
    first = (await _token(sessions, issued.token)).last_used_at
    assert first is not None
    await accounts.user_for_token(issued.token)
    assert (await _token(sessions, issued.token)).last_used_at == first  # not written again

    async with sessions() as session:  # no waiting: its minute is over
        record = await session.get(ApiToken, (await _token(sessions, issued.token)).id)
        record.last_used_at -= timedelta(minutes=2)
        await session.commit()
    await accounts.user_for_token(issued.token)
    assert (await _token(sessions, issued.token)).last_used_at > first


async def _expire(sessions, model, **past: timedelta) -> None:
    async with sessions() as session:
        for row in await session.scalars(select(model)):
            for column, ago in past.items():
                setattr(row, column, datetime.now(timezone.utc) - ago)
        await session.commit()


async def test_expired_tokens_and_spent_login_links_are_purged(sessions) -> None:
    accounts, links = Accounts(sessions), LoginLinks(sessions)
    ada, old = await accounts.register("ada@example.com", "correct horse battery")
    await links.redeem(await links.create(ada))
    expired = await links.create(ada, purpose="reset_password")  # another purpose: the login's next link voids none
    await _expire(sessions, ApiToken, expires_at=timedelta(seconds=1))
    async with sessions() as session:
        await session.execute(update(LoginLink).where(LoginLink.token_hash == hash_token(expired))
                              .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        await session.commit()
    fresh_link = await links.create(ada, purpose="verify_email")
    _, fresh = await accounts.register("bob@example.com", "correct horse battery")

    assert await accounts.purge_expired() == 3
    assert await _token(sessions, old.token) is None and await _token(sessions, fresh.token) is not None
    async with sessions() as session:
        assert list(await session.scalars(select(LoginLink.token_hash))) == [hash_token(fresh_link)]
    assert await accounts.purge_expired() == 0


async def test_logging_in_purges_that_user_s_expired_tokens(sessions) -> None:
    accounts = Accounts(sessions)
    _, ada_old = await accounts.register("ada@example.com", "correct horse battery")
    _, bob_old = await accounts.register("bob@example.com", "correct horse battery")
    await _expire(sessions, ApiToken, expires_at=timedelta(seconds=1))
    ada_new = await accounts.login("ada@example.com", "correct horse battery")
    assert await _token(sessions, ada_old.token) is None
    assert await _token(sessions, ada_new.token) is not None
    assert await _token(sessions, bob_old.token) is not None  # someone else's: left to the purge


async def test_invite_codes_are_hashed_the_same_way(sessions) -> None:
    [code] = await Invites(sessions).create(1, None)
    async with sessions() as session:
        assert await session.scalar(select(Invite.code_hash)) == hash_token(code) == hash_token(f" {code}\n")


async def test_a_login_link_works_once(sessions) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    token = await links.create(ada, timedelta(minutes=10))
    assert token.startswith(LINK_PREFIX) and token not in redact(f"open /login?token={token}")
    async with sessions() as session:
        assert await session.scalar(select(LoginLink.token_hash)) == hash_token(token)  # the hash only

    assert (await links.redeem(token)).id == ada.id
    with pytest.raises(AuthenticationFailed, match="used already"):
        await links.redeem(token)
    with pytest.raises(AuthenticationFailed):
        await links.redeem(LINK_PREFIX + "made-up")
    async with sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action).where(AuditLog.user_id == ada.id)))
    assert actions == ["user.login_link"]


async def test_a_login_link_expires(sessions) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    token = await links.create(ada, timedelta(minutes=10))
    async with sessions() as session:  # no waiting: its ten minutes are over
        link = await session.scalar(select(LoginLink))
        link.expires_at -= timedelta(minutes=11)
        await session.commit()
    with pytest.raises(AuthenticationFailed, match="expired"):
        await links.redeem(token)
    with pytest.raises(ValueError):
        await links.create(ada, timedelta(0))


async def test_the_access_policy(sessions) -> None:
    invites = Invites(sessions)
    ada = await saved_user(sessions, email="ada@example.com", email_verified_at=datetime.now(timezone.utc))
    bob = await saved_user(sessions, telegram_user_id=4242)
    admin = await saved_user(sessions, is_admin=True)

    await AccessPolicy(AccessConfig("open"), invites).check(ada)

    allowlist = AccessPolicy(AccessConfig("allowlist", frozenset({4242}), frozenset({"Ada@Example.com"})), invites)
    await allowlist.check(ada)
    await allowlist.check(bob)
    await allowlist.check(admin)
    with pytest.raises(AccessDenied, match="allowlist"):
        await allowlist.check(await saved_user(sessions))

    invite_only = AccessPolicy(AccessConfig("invite"), invites)
    with pytest.raises(AccessDenied, match="invite-only"):
        await invite_only.check(ada)
    [code] = await invites.create(1, None)
    await invites.redeem(ada, code)
    await invite_only.check(ada)
    await invite_only.check(admin)
    assert invite_only.mode == "invite"


async def test_an_email_counts_for_the_allowlist_only_once_verified(sessions) -> None:
    allowlist = AccessPolicy(AccessConfig("allowlist", frozenset({4242}), frozenset({"ada@example.com"})),
                             Invites(sessions))
    anyone_can_register_it = await saved_user(sessions, email="ada@example.com")
    with pytest.raises(AccessDenied) as refused:
        await allowlist.check(anyone_can_register_it)
    assert "your email address is not verified yet, so it cannot count for the allowlist" in refused.value.message
    assert "add your Telegram id to the allowlist" in refused.value.message  # what they can do instead

    unlisted = await saved_user(sessions, email="eve@example.com")  # the same answer: nobody learns who is listed
    with pytest.raises(AccessDenied, match="not verified yet") as also_refused:
        await allowlist.check(unlisted)
    assert also_refused.value.message == refused.value.message

    async with sessions() as session:  # proven, once email verification sets the column
        stored = await session.get(User, anyone_can_register_it.id)
        stored.email_verified_at = datetime.now(timezone.utc)
        await session.commit()
    await allowlist.check(stored)
    await allowlist.check(await saved_user(sessions, email="bob@example.com", telegram_user_id=4242))  # Telegram vouches


async def test_registering_an_allowlisted_email_does_not_let_anyone_in(settings, sessions) -> None:
    from tests.support.api_client import running_api
    from tests.support.memory_runtime import MemoryRuntime

    runtime = MemoryRuntime()
    private = settings.model_copy(update={"access": "allowlist", "allowed_emails": ["boss@example.com"]})
    async with running_api(private, runtime) as api:
        await api.sign_up("boss@example.com")  # anyone can claim the address: nothing proves it is theirs
        body = {"model_provider": "openai", "api_key": "sk-proj-allowlistALLOW0123456789abcd"}
        status, refused = await api.call("POST", "/api/instances", body)
        assert status == 403, refused
        assert "email address is not verified yet, so it cannot count" in refused["error"]["message"]
        assert runtime.starts == []
    await runtime.close()
