"""The pairing form of an instance's page, through the real app over in-memory gateways: the
hint says where a code comes from, a wrong code is shown next to the field with what was typed,
an approved one goes back to the instance with a notice, and another person gets 404 pages."""

from __future__ import annotations

import uuid

import pytest

from tests.support.memory_runtime import MemoryRuntime
from tests.support.web_client import WebUser

CODE = "HX7K2MQP"
SENDER = 987654321


@pytest.fixture
async def owner(browser_for) -> WebUser:
    return browser_for()


@pytest.fixture
async def instance_id(site, owner: WebUser, telegram) -> str:
    """Ada's instance, with a pending pairing request; the API calls are hers (her session)."""
    person = owner
    await person.sign_up("ada@example.com")
    site.token = person.cookie("clawfleet_session")
    status, created = await site.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": "sk-proj-pagesPAGES0123456789abcdef",
        "telegram_bot_token": telegram.add_bot(username="ada_helper_bot").token,
    })
    assert status == 202, created
    assert (await site.progress(created["id"]))[-1]["done"]
    runtime: MemoryRuntime = site.platform.runtime
    runtime.pairing_requests[uuid.UUID(created["id"])] = {CODE: SENDER}
    return created["id"]


async def test_the_page_asks_for_the_code_and_says_where_it_comes_from(site, owner, instance_id) -> None:
    page = await owner.get(f"/instances/{instance_id}/pairing")
    assert page.status == 200
    assert page.has("Message your bot; it answers with a pairing code") and page.has("@ada_helper_bot")
    assert 'id="pairing-form"' in page.text and f'action="/instances/{instance_id}/pairing"' in page.text
    assert '<label for="code">Pairing code</label>' in page.text and 'aria-describedby="code-hint"' in page.text


async def test_a_wrong_code_is_shown_next_to_the_field_with_what_was_typed(site, owner, instance_id) -> None:
    page = await owner.submit(f"/instances/{instance_id}/pairing", {"code": "zzzz2222"})
    assert page.status == 400
    assert page.has("No pending request has this code; codes expire after an hour")
    assert 'id="code-error"' in page.text and 'aria-invalid="true"' in page.text
    assert 'value="zzzz2222"' in page.text
    bad_shape = await owner.submit(f"/instances/{instance_id}/pairing", {"code": "1234"})
    assert bad_shape.status == 400 and bad_shape.has("8 letters and digits") and 'id="code-error"' in bad_shape.text


async def test_an_approved_code_goes_back_to_the_instance_with_a_notice(site, owner, instance_id) -> None:
    form = await owner.get(f"/instances/{instance_id}/pairing")
    answer = await owner.post(f"/instances/{instance_id}/pairing", {"code": CODE.lower()}, csrf=form.csrf,
                                    follow=False)
    assert answer.status == 303 and answer.headers["Location"] == f"/instances/{instance_id}?paired=1"
    _, shown = await site.call("GET", f"/api/instances/{instance_id}")
    assert shown["telegram_user_id"] == SENDER
    # The notice comes from the row, shown wherever the partial is included; the form is gone.
    after = await owner.get(f"/instances/{instance_id}/pairing?paired=1")
    assert after.has(f"Paired: your bot now answers Telegram user {SENDER}, and only them: message it again to begin.")
    assert 'id="pairing-form"' not in after.text


async def test_the_notice_is_never_taken_from_the_address(site, owner, instance_id) -> None:
    page = await owner.get(f"/instances/{instance_id}/pairing?paired=1")
    assert not page.has("Paired:") and 'id="pairing-form"' in page.text


async def test_an_instance_at_rest_is_said_so_above_the_form(site, owner, instance_id) -> None:
    assert (await site.call("POST", f"/api/instances/{instance_id}/stop"))[0] == 202
    await site.progress(instance_id)
    page = await owner.submit(f"/instances/{instance_id}/pairing", {"code": CODE})
    assert page.status == 409 and page.has("stopped, not running: start it")
    assert 'role="alert"' in page.text and 'id="code-error"' not in page.text


async def test_someone_elses_instance_is_a_404_page(site, instance_id, browser_for) -> None:
    stranger = browser_for()
    await stranger.sign_up("eve@example.com")
    page = await stranger.get(f"/instances/{instance_id}/pairing")
    assert page.status == 404 and "pairing-form" not in page.text
    own_form = await stranger.get("/billing")
    posted = await stranger.post(f"/instances/{instance_id}/pairing", {"code": CODE}, csrf=own_form.csrf)
    assert posted.status == 404
    _, shown = await site.call("GET", f"/api/instances/{instance_id}")
    assert shown["telegram_user_id"] is None


async def test_signed_out_people_are_sent_to_sign_in(browser_for, instance_id) -> None:
    page = await browser_for().get(f"/instances/{instance_id}/pairing", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == f"/login?next=/instances/{instance_id}/pairing"
