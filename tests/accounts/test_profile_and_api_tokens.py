"""The account's own changes and its API tokens, on their own against the real database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from accounts import tokens
from accounts.api_tokens import MAX_TOKENS_PER_USER
from accounts.throttle import ThrottleConfig
from accounts.tokens import Credential, hash_token
from accounts.users import Accounts
from db.errors import AccessDenied, AuthenticationFailed, Conflict, InvalidInput, NotFound, TooManyAttempts
from db.models import ApiToken, User

PASSWORD = "correct horse battery"


async def _credential(accounts: Accounts, token: str) -> Credential:
    credential = await accounts.credential_for_token(token)
    assert credential is not None
    return credential


async def test_sessions_and_api_tokens_are_distinct_kinds_with_rights(sessions) -> None:
    accounts = Accounts(sessions)
    _, login = await accounts.register("ada@example.com", PASSWORD)
    session_credential = await _credential(accounts, login.token)
    assert session_credential.token.kind == "session"

    plain = await accounts.api_tokens.create(session_credential, " script ")
    assert (plain.record.kind, plain.record.name, plain.record.can_manage_tokens) == ("api", "script", False)
    plain_credential = await _credential(accounts, plain.token)
    assert plain_credential.token.kind == "api" and plain_credential.token.expires_at is None
    with pytest.raises(AccessDenied, match="can_manage_tokens"):
        await accounts.api_tokens.create(plain_credential, "successor")
    with pytest.raises(AccessDenied):
        await accounts.api_tokens.revoke(plain_credential, plain.record.id)

    manager = await accounts.api_tokens.create(session_credential, "admin", can_manage_tokens=True)
    manager_credential = await _credential(accounts, manager.token)
    await accounts.api_tokens.revoke(manager_credential, plain.record.id)
    assert await accounts.credential_for_token(plain.token) is None
    assert [t.name for t in await accounts.api_tokens.list(session_credential.user)] == ["admin"]
    with pytest.raises(NotFound):
        await accounts.api_tokens.revoke(manager_credential, session_credential.token.id)  # a session
    async with sessions() as session:
        stored = set(await session.scalars(select(ApiToken.token_hash)))
    assert stored == {hash_token(login.token), hash_token(manager.token)}


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, None, 7])
async def test_a_token_needs_a_name_of_1_to_100_characters(sessions, name) -> None:
    accounts = Accounts(sessions)
    _, login = await accounts.register("ada@example.com", PASSWORD)
    with pytest.raises(InvalidInput) as refused:
        await accounts.api_tokens.create(await _credential(accounts, login.token), name)
    assert refused.value.field == "name"


async def test_a_password_change_keeps_the_callers_session_and_api_tokens(sessions) -> None:
    accounts = Accounts(sessions)
    _, first = await accounts.register("ada@example.com", PASSWORD)
    second = await accounts.login("ada@example.com", PASSWORD)
    caller = await _credential(accounts, first.token)
    script = await accounts.api_tokens.create(caller, "script")

    with pytest.raises(AuthenticationFailed) as wrong:
        await accounts.change_profile(caller, password="a new long password", current_password="wrong one!")
    assert wrong.value.field == "current_password"
    await accounts.change_profile(caller, password="a new long password", current_password=PASSWORD)
    assert await accounts.credential_for_token(first.token) is not None
    assert await accounts.credential_for_token(second.token) is None
    assert await accounts.credential_for_token(script.token) is not None


async def test_password_guesses_through_a_session_are_throttled(sessions) -> None:
    accounts = Accounts(sessions, ThrottleConfig(failures_per_account=2))
    _, login = await accounts.register("ada@example.com", PASSWORD)
    caller = await _credential(accounts, login.token)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await accounts.confirm_deletion(caller.user, "a guess at it")
    with pytest.raises(TooManyAttempts):
        await accounts.confirm_deletion(caller.user, PASSWORD)


async def test_an_email_taken_by_another_account_is_refused(sessions) -> None:
    accounts = Accounts(sessions)
    await accounts.register("bob@example.com", PASSWORD)
    _, login = await accounts.register("ada@example.com", PASSWORD)
    with pytest.raises(Conflict) as taken:
        await accounts.change_profile(await _credential(accounts, login.token), email="bob@example.com",
                                      current_password=PASSWORD)
    assert taken.value.field == "email"


async def test_deleting_the_account_takes_its_tokens(sessions) -> None:
    accounts = Accounts(sessions)
    user, login = await accounts.register("ada@example.com", PASSWORD)
    await accounts.api_tokens.create(await _credential(accounts, login.token), "script")
    await accounts.delete(user)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        assert await session.scalar(select(func.count()).select_from(ApiToken)) == 0
    assert await accounts.credential_for_token(login.token) is None


async def test_tokens_issued_directly_cannot_manage_tokens_by_default(sessions) -> None:
    accounts = Accounts(sessions)
    user, _ = await accounts.register("ada@example.com", PASSWORD)
    async with sessions() as session:
        issued = tokens.issue(session, user, kind="api", name="older token")
        await session.commit()
    assert (await _credential(accounts, issued.token)).token.can_manage_tokens is False


async def test_creations_at_once_keep_the_cap(sessions) -> None:
    accounts = Accounts(sessions)
    _, login = await accounts.register("ada@example.com", PASSWORD)
    caller = await _credential(accounts, login.token)
    for number in range(MAX_TOKENS_PER_USER - 3):
        await accounts.api_tokens.create(caller, f"token {number}")
    results = await asyncio.gather(*[accounts.api_tokens.create(caller, f"racing {n}") for n in range(8)],
                                   return_exceptions=True)
    assert sum(not isinstance(result, Exception) for result in results) == 3
    assert all(isinstance(result, Conflict) for result in results if isinstance(result, Exception)), results
    assert len(await accounts.api_tokens.list(caller.user)) == MAX_TOKENS_PER_USER
