"""One-time links of each purpose: taken for that purpose only, for as long as it lasts, once,
the newest of a purpose voiding its user's older ones; an email link only while the account
keeps its address; and none of them ever shows in a log line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from accounts.login_links import CODE_ALPHABET, LIFETIMES, LINK_PREFIX, OPEN_INSTANCE, LoginLinks, take
from accounts.users import Accounts
from db.errors import AuthenticationFailed, InvalidInput
from db.models import LoginLink, User
from db.redaction import REDACTED, redact
from tests.support.builders import new_instance, saved_user

OTHER_PURPOSES = ["verify_email", "reset_password", "link_telegram"]


async def _take(sessions, token: str, purpose: str) -> User:
    async with sessions() as session:
        user = await take(session, token, purpose)
        await session.commit()
    return user


@pytest.mark.parametrize("purpose", OTHER_PURPOSES)
async def test_a_login_takes_no_link_of_another_purpose_nor_the_other_way(sessions, purpose) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    other, login = await links.create(ada, purpose=purpose), await links.create(ada)
    with pytest.raises(AuthenticationFailed):
        await links.redeem(other)
    with pytest.raises(InvalidInput):
        await _take(sessions, login, purpose)
    assert (await _take(sessions, other, purpose)).id == ada.id  # both still good for their own purpose
    assert (await links.redeem(login)).id == ada.id


async def test_each_purpose_lasts_its_own_time_and_a_new_link_voids_the_older(sessions) -> None:
    links = LoginLinks(sessions)
    ada, bob = await saved_user(sessions), await saved_user(sessions)
    for purpose, lifetime in LIFETIMES.items():
        if purpose == OPEN_INSTANCE:
            continue  # it names an instance and a session: below
        issued = await links.issue(ada, purpose)
        expected = datetime.now(timezone.utc) + lifetime
        assert abs((issued.expires_at - expected).total_seconds()) < 5, purpose
    assert set(LIFETIMES.values()) == {timedelta(minutes=10), timedelta(hours=24), timedelta(hours=1),
                                       timedelta(minutes=1)}

    older, bobs = await links.create(ada), await links.create(bob)
    reset = await links.create(ada, purpose="reset_password")
    newer = await links.create(ada)
    with pytest.raises(AuthenticationFailed):
        await links.redeem(older)  # voided by the newer login link of the same user
    assert (await links.redeem(newer)).id == ada.id
    assert (await links.redeem(bobs)).id == bob.id  # someone else's stays
    assert await links.usable(reset, "reset_password")  # and so does another purpose's


async def test_an_email_link_holds_only_while_the_account_keeps_that_address(sessions) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions, email="ada@example.com")
    token = await links.create(ada, purpose="verify_email")
    async with sessions() as session:
        await session.execute(update(User).values(email="ada@elsewhere.example"))
        await session.commit()
    with pytest.raises(InvalidInput, match="no longer has"):
        await _take(sessions, token, "verify_email")
    with pytest.raises(ValueError):
        await links.create(await saved_user(sessions, email=None, telegram_user_id=5), purpose="verify_email")


async def test_a_telegram_code_is_short_typed_in_any_case_and_expires(sessions) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    code = await links.create(ada, purpose="link_telegram")
    assert code.startswith("link-") and len(code) == 15 and set(code[5:]) <= set(CODE_ALPHABET)
    assert not set(code[5:]) & set("01ilo")  # none of the characters people mistake for each other
    assert (await _take(sessions, f"  {code.upper()} \n", "link_telegram")).id == ada.id

    expiring = await links.create(ada, purpose="link_telegram")
    async with sessions() as session:
        await session.execute(update(LoginLink).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        await session.commit()
    with pytest.raises(InvalidInput, match="expired") as refused:
        await _take(sessions, expiring, "link_telegram")
    assert refused.value.field == "code"
    for junk in ("", "   ", "link-\udcff", 42):
        with pytest.raises(InvalidInput):
            await _take(sessions, junk, "link_telegram")


async def test_no_kind_of_link_shows_in_a_log_line(sessions) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    for purpose in ["login", *OTHER_PURPOSES]:
        token = await links.create(ada, purpose=purpose)
        assert token.startswith(LINK_PREFIX if purpose != "link_telegram" else "link-")
        typed = token.upper() if purpose == "link_telegram" else token  # a code may be typed in capitals
        for line in (f"open http://localhost:8080/reset-password?token={token}", f"/start {token}",
                     f"/link {typed}", f"code={token}."):
            masked = redact(line)
            assert token not in masked and typed not in masked and REDACTED in masked, (purpose, masked)
    assert redact("see the link-everything page") == "see the link-everything page"  # not a code's alphabet


async def test_an_instance_link_opens_its_own_instance_once_and_voids_only_that_instances_older_one(
        sessions, keyring) -> None:
    links = LoginLinks(sessions)
    ada = await saved_user(sessions)
    first, second = new_instance(keyring, ada), new_instance(keyring, ada)
    async with sessions() as session:
        session.add_all([first, second])
        await session.commit()
    login = await Accounts(sessions).start_session(ada)
    with pytest.raises(ValueError):
        await links.issue(ada, OPEN_INSTANCE)  # an instance link without its instance and session
    with pytest.raises(ValueError):
        await links.issue(ada, "login", instance_id=first.id, session_id=login.record.id)

    issued = await links.issue(ada, OPEN_INSTANCE, instance_id=first.id, session_id=login.record.id)
    expected = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert abs((issued.expires_at - expected).total_seconds()) < 5
    other = await links.issue(ada, OPEN_INSTANCE, instance_id=second.id, session_id=login.record.id)
    newer = await links.issue(ada, OPEN_INSTANCE, instance_id=first.id, session_id=login.record.id)
    with pytest.raises(AuthenticationFailed):
        await links.redeem_instance_link(issued.token, first.id)  # voided by the newer one of that instance
    with pytest.raises(AuthenticationFailed):
        await links.redeem_instance_link(newer.token, second.id)  # carried to another instance: refused, and used
    with pytest.raises(AuthenticationFailed):
        await links.redeem_instance_link(newer.token, first.id)
    user, session_id = await links.redeem_instance_link(other.token, second.id)  # another instance's stays
    assert (user.id, session_id) == (ada.id, login.record.id)
    with pytest.raises(AuthenticationFailed):
        await links.redeem(other.token)  # and it is no login link
