"""The onboarding wizard through the real app over in-memory gateways and the fake Bot API:
four steps to a running assistant, each step's errors next to its field (what was typed kept,
never a secret), the answers kept sealed server-side and resumed from another browser, and the
deploy's progress with and without JavaScript."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from sqlalchemy import select, update

from db.models import Instance, OnboardingDraft, User

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
ANTHROPIC_KEY = "sk-ant-api03-canaryCANARYcanary0123456789"


async def _draft_row(sessions, email: str) -> OnboardingDraft | None:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
        return await session.scalar(select(OnboardingDraft).where(OnboardingDraft.user_id == user.id))


async def _through_step_3(person, telegram, *, email: str = "ada@example.com", username: str = "ada_helper_bot"):
    await person.sign_up(email)
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
    await person.submit("/onboard/key", {"api_key": OPENAI_KEY})
    bot = telegram.add_bot(username=username)
    page = await person.submit("/onboard/telegram", {"telegram_bot_token": bot.token, "owner": "id",
                                                     "telegram_user_id": "4242"})
    return bot, page


def _step(page) -> int | None:
    """Which step of the wizard the page shows."""
    found = re.search(r"<h2>Step (\d) of 4", page.text)
    return int(found.group(1)) if found else None


def _instance_id(page) -> str:
    found = re.search(r"/onboard/deploying/([0-9a-f-]{36})", page.url)
    assert found, page.url
    return found.group(1)


async def _final_progress_page(person, instance_id: str, timeout: float = 30):
    """The progress page once it no longer refreshes itself, as a browser without JavaScript
    would come to it."""
    deadline = time.monotonic() + timeout
    while True:
        page = await person.get(f"/onboard/deploying/{instance_id}")
        assert page.status == 200, page.text
        if 'http-equiv="refresh"' not in page.text:
            return page
        assert time.monotonic() < deadline, "the deploy did not end"
        await asyncio.sleep(0.1)


async def test_the_whole_wizard_ends_on_a_running_assistant(browser_for, site, sessions, telegram) -> None:
    person = browser_for()
    signed_up = await person.sign_up("ada@example.com")
    assert signed_up.url.endswith("/onboard") and _step(signed_up) == 1
    for provider in ("Anthropic (Claude)", "OpenAI", "Kimi (Moonshot)", "Kimi Coding"):
        assert signed_up.has(provider)
    assert 'value="claude-sonnet-5" selected' in signed_up.text  # each provider's default preselected

    step2 = await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-sol"})
    assert step2.url.endswith("/onboard/key") and step2.has("OpenAI, gpt-6-sol")
    step3 = await person.submit("/onboard/key", {"api_key": OPENAI_KEY})
    assert step3.url.endswith("/onboard/telegram") and step3.has("@BotFather") and step3.has("@userinfobot")
    bot = telegram.add_bot(username="ada_helper_bot")
    review = await person.submit("/onboard/telegram", {"telegram_bot_token": bot.token, "owner": "id",
                                                       "telegram_user_id": "4242"})
    assert review.url.endswith("/onboard/review")
    for shown in ("OpenAI", "gpt-6-sol", "@ada_helper_bot", "Telegram id 4242", "ending …6789"):
        assert review.has(shown), shown
    assert OPENAI_KEY not in review.text and bot.token not in review.text

    deploying = await person.submit("/onboard/review", {}, action="/onboard/deploy")
    instance_id = _instance_id(deploying)
    assert 'id="progress"' in deploying.text and f'data-progress-url="/api/instances/{instance_id}/progress"' in deploying.text

    done = await _final_progress_page(person, instance_id)
    assert done.has("Your assistant is running")
    assert 'href="https://t.me/ada_helper_bot"' in done.text and done.has("send it a message")
    assert f'href="/instances/{instance_id}"' in done.text and 'href="/dashboard"' in done.text
    assert 'class="done"' in done.text and 'data-final="true"' in done.text
    async with sessions() as session:
        instance = await session.get(Instance, uuid.UUID(instance_id))
    assert (instance.status, instance.model_provider, instance.model) == ("running", "openai", "gpt-6-sol")
    assert instance.telegram_allow_from == 4242 and instance.telegram_bot_username == "ada_helper_bot"
    assert await _draft_row(sessions, "ada@example.com") is None  # gone once the deploy was accepted


async def test_step_1_refuses_an_unknown_provider_or_model_next_to_the_field(browser_for) -> None:
    person = browser_for()
    await person.sign_up("bea@example.com")
    unknown = await person.submit("/onboard/provider", {"model_provider": "nobody"})
    assert unknown.status == 400 and unknown.has("Unknown model provider") and 'id="model_provider-error"' in unknown.text
    wrong_model = await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-1"})
    assert wrong_model.status == 400 and wrong_model.has("OpenAI offers these models")
    assert 'id="model-openai-error"' in wrong_model.text
    assert re.search(r'value="openai"[^>]*checked', wrong_model.text)  # the choice is kept


@pytest.mark.parametrize(("key", "says"), [
    ("not a key", "no spaces"),
    ("hello", "does not look like an API key for Anthropic"),
    (OPENAI_KEY, "looks like an API key for OpenAI, not for Anthropic"),
])
async def test_step_2_says_what_is_wrong_with_a_key_and_never_echoes_it(browser_for, sessions, key, says) -> None:
    person = browser_for()
    await person.sign_up("cy@example.com")
    await person.submit("/onboard/provider", {"model_provider": "anthropic", "model_anthropic": "claude-sonnet-5"})
    page = await person.submit("/onboard/key", {"api_key": key})
    assert page.status == 400 and page.has(says)
    assert 'id="api_key-error"' in page.text and 'aria-invalid="true"' in page.text
    assert key not in page.text
    assert (await _draft_row(sessions, "cy@example.com")).api_key_sealed is None
    assert _step(await person.get("/onboard")) == 2


async def test_a_saved_key_shows_its_end_only_and_is_kept_or_replaced(browser_for, sessions) -> None:
    person = browser_for()
    await person.sign_up("dee@example.com")
    await person.submit("/onboard/provider", {"model_provider": "anthropic", "model_anthropic": "claude-opus-5"})
    await person.submit("/onboard/key", {"api_key": ANTHROPIC_KEY})
    again = await person.get("/onboard/key")
    assert again.has("A key is saved (ending …6789)") and ANTHROPIC_KEY not in again.text
    sealed = (await _draft_row(sessions, "dee@example.com")).api_key_sealed
    kept = await person.submit("/onboard/key", {"api_key": ""})
    assert kept.url.endswith("/onboard/telegram")
    assert (await _draft_row(sessions, "dee@example.com")).api_key_sealed == sealed
    await person.submit("/onboard/key", {"api_key": "sk-ant-api03-anotherANOTHERanother98765"})
    assert (await person.get("/onboard/key")).has("ending …8765")
    # another provider drops the key: it was the first provider's
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-5.5"})
    assert _step(await person.get("/onboard")) == 2


async def test_step_3_errors_are_next_to_their_fields_and_keep_the_typed_id(browser_for, site, telegram) -> None:
    person = browser_for()
    await person.sign_up("eli@example.com")
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-5.5"})
    await person.submit("/onboard/key", {"api_key": OPENAI_KEY})

    shape = await person.submit("/onboard/telegram", {"telegram_bot_token": "12345", "owner": "id",
                                                      "telegram_user_id": "my name"})
    assert shape.status == 400 and shape.has("does not look like a Telegram bot token")
    assert 'id="telegram_bot_token-error"' in shape.text and 'id="telegram_user_id-error"' in shape.text
    assert shape.has("Your Telegram id is a number") and 'value="my name"' in shape.text

    unknown = f"{7_111_111_111}:AA{'x' * 33}"
    refused = await person.submit("/onboard/telegram", {"telegram_bot_token": unknown, "owner": "id",
                                                        "telegram_user_id": "777"})
    assert refused.status == 400 and refused.has("Telegram does not know this bot token")
    assert unknown not in refused.text and 'value="777"' in refused.text

    taken = telegram.add_bot(username="taken_bot")
    other = await site.sign_up("owner@example.com")
    status, _ = await site.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY,
                                                           "telegram_bot_token": taken.token}, token=other)
    assert status == 202
    used = await person.submit("/onboard/telegram", {"telegram_bot_token": taken.token, "owner": "pairing"})
    assert used.status == 409 and used.has("@taken_bot already serves another assistant")
    assert taken.token not in used.text
    assert re.search(r'value="pairing"[^>]*checked', used.text)

    mine = telegram.add_bot(username="eli_bot")
    ok = await person.submit("/onboard/telegram", {"telegram_bot_token": mine.token, "owner": "pairing"})
    assert ok.url.endswith("/onboard/review") and ok.has("whoever you approve with a pairing code")
    shown = await person.get("/onboard/telegram")
    assert shown.has("Your bot is saved: @eli_bot") and mine.token not in shown.text


async def test_a_linked_telegram_account_is_who_it_answers(browser_for, site, sessions, telegram) -> None:
    person = browser_for()
    await person.sign_up("fay@example.com")
    async with sessions() as session:
        await session.execute(update(User).where(User.email == "fay@example.com").values(telegram_user_id=5151))
        await session.commit()
    await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-5.5"})
    step3 = await person.submit("/onboard/key", {"api_key": OPENAI_KEY})
    assert step3.has("Your Telegram account is linked (id 5151)") and 'name="telegram_user_id"' not in step3.text
    bot = telegram.add_bot(username="fay_bot")
    review = await person.submit("/onboard/telegram", {"telegram_bot_token": bot.token})
    assert review.url.endswith("/onboard/review") and review.has("your linked Telegram account, id 5151")
    done = await _final_progress_page(person, _instance_id(await person.submit("/onboard/review", {},
                                                                               action="/onboard/deploy")))
    assert done.has("Your assistant is running")
    async with sessions() as session:
        assert (await session.scalar(select(Instance.telegram_allow_from))) == 5151


async def test_a_new_browser_resumes_where_the_draft_was_left_and_secrets_are_sealed(browser_for, sessions,
                                                                                     telegram) -> None:
    first = browser_for()
    await first.sign_up("gus@example.com")
    await first.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-6-luna"})
    await first.submit("/onboard/key", {"api_key": OPENAI_KEY})
    row = await _draft_row(sessions, "gus@example.com")
    assert row.api_key_sealed and row.api_key_sealed.startswith("v1:") and OPENAI_KEY not in row.api_key_sealed
    assert (row.model_provider, row.model) == ("openai", "gpt-6-luna")

    second = browser_for()
    await second.submit("/login", {"email": "gus@example.com", "password": "correct horse battery"})
    resumed = await second.get("/onboard")
    assert _step(resumed) == 3 and resumed.has("Your assistant's own bot")
    assert 'href="/onboard/provider"' in resumed.text and 'href="/onboard/key"' in resumed.text  # earlier steps
    bot = telegram.add_bot(username="gus_bot")
    await second.submit("/onboard/telegram", {"telegram_bot_token": bot.token, "owner": "id",
                                              "telegram_user_id": "99"})
    row = await _draft_row(sessions, "gus@example.com")
    assert row.telegram_bot_token_sealed.startswith("v1:") and bot.token not in row.telegram_bot_token_sealed
    for column in ("model_provider", "model", "telegram_bot_username"):
        assert bot.token not in str(getattr(row, column)) and OPENAI_KEY not in str(getattr(row, column))
    assert _step(await first.get("/onboard")) == 4
    # a later step before the earlier ones: back to the first unfinished one
    newcomer = browser_for()
    await newcomer.sign_up("hal@example.com")
    assert (await newcomer.get("/onboard/review")).url.endswith("/onboard/provider")


async def test_nobody_else_sees_a_draft_or_a_deploy(browser_for, telegram) -> None:
    owner = browser_for()
    bot, _ = await _through_step_3(owner, telegram, email="ida@example.com", username="ida_bot")
    instance_id = _instance_id(await owner.submit("/onboard/review", {}, action="/onboard/deploy"))

    stranger = browser_for()
    await stranger.sign_up("jo@example.com")
    assert _step(await stranger.get("/onboard")) == 1
    review = await stranger.get("/onboard/review")
    assert review.url.endswith("/onboard/provider") and not review.has("ida_bot")
    assert (await stranger.get(f"/onboard/deploying/{instance_id}")).status == 404
    page = await stranger.get("/onboard/provider")
    assert (await stranger.post(f"/onboard/deploying/{instance_id}/retry", {}, csrf=page.csrf)).status == 404
    assert (await stranger.get("/onboard/deploying/not-an-id")).status == 404
    await _final_progress_page(owner, instance_id)


async def test_the_progress_page_without_javascript_refreshes_until_the_final_event(browser_for, site,
                                                                                   telegram) -> None:
    person = browser_for()
    await _through_step_3(person, telegram, email="kim@example.com", username="kim_bot")
    site.platform.runtime.ready_after = 3  # long enough to see the page while it runs
    deploying = await person.submit("/onboard/review", {}, action="/onboard/deploy")
    instance_id = _instance_id(deploying)
    assert deploying.has("Deploying your assistant")
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in deploying.text
    while 'class="current"' not in deploying.text:  # the deploy's first step may not have begun yet
        assert 'data-final="true"' not in deploying.text, "the deploy ended before a step was seen running"
        await asyncio.sleep(0.1)
        deploying = await person.get(f"/onboard/deploying/{instance_id}")
    assert 'data-final="true"' not in deploying.text
    done = await _final_progress_page(person, instance_id)
    items = re.findall(r'<li data-seq="(\d+)" class="(\w+)"', done.text)
    assert len(items) >= 3 and items[-1][1] == "done" and all(kind == "done" for _, kind in items)
    assert [int(seq) for seq, _ in items] == list(range(1, len(items) + 1))
    assert done.has("Starting the OpenClaw gateway.") and 'data-final="true"' in done.text
    assert 'src="/static/js/progress.js' in done.text


async def test_a_failed_deploy_says_why_and_a_retry_starts_it_again(browser_for, site, sessions, telegram) -> None:
    person = browser_for()
    await _through_step_3(person, telegram, email="lou@example.com", username="lou_bot")
    site.platform.runtime.exits_on_start = True
    instance_id = _instance_id(await person.submit("/onboard/review", {}, action="/onboard/deploy"))
    failed = await _final_progress_page(person, instance_id)
    assert failed.has("Your assistant did not start") and 'class="failed"' in failed.text
    assert 'role="alert"' in failed.text and 'id="onboard-retry"' in failed.text
    assert f'href="/instances/{instance_id}"' in failed.text

    site.platform.runtime.exits_on_start = False
    retried = await person.post(f"/onboard/deploying/{instance_id}/retry", {}, csrf=failed.csrf)
    assert retried.url.endswith(f"/onboard/deploying/{instance_id}")
    done = await _final_progress_page(person, instance_id)
    assert done.has("Your assistant is running")
    async with sessions() as session:
        assert (await session.get(Instance, uuid.UUID(instance_id))).status == "running"


async def test_over_the_limit_step_1_says_so_instead_of_asking(browser_for, telegram) -> None:
    person = browser_for()
    await _through_step_3(person, telegram, email="max@example.com", username="max_bot")
    instance_id = _instance_id(await person.submit("/onboard/review", {}, action="/onboard/deploy"))
    await _final_progress_page(person, instance_id)
    again = await person.get("/onboard")
    assert again.has("Your new assistant")
    assert again.has("as many as your plan allows") and 'href="/dashboard"' in again.text
    assert 'id="onboard-provider"' not in again.text


async def test_a_refusal_at_deploy_keeps_the_draft_and_shows_the_step_to_fix(browser_for, site, sessions,
                                                                             telegram) -> None:
    person = browser_for()
    bot, _ = await _through_step_3(person, telegram, email="ned@example.com", username="ned_bot")
    # the bot starts serving someone else's assistant between step 3 and Deploy
    other = await site.sign_up("other@example.com")
    status, _ = await site.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY,
                                                           "telegram_bot_token": bot.token}, token=other)
    assert status == 202
    refused = await person.submit("/onboard/review", {}, action="/onboard/deploy")
    assert refused.status == 409 and refused.has("@ned_bot already serves another assistant")
    assert 'id="telegram_bot_token-error"' in refused.text and "Step 3 of 4" in refused.text
    assert await _draft_row(sessions, "ned@example.com") is not None
    assert (await person.get("/onboard/key")).has("A key is saved (ending …6789)")  # put back, still opens


async def test_access_policy_refusals_are_said_on_step_1(browser_for, settings_for) -> None:
    from tests.support.web_client import WebUser, serving_pages

    async with serving_pages(settings_for(access="invite")) as closed:
        person = WebUser(closed)
        try:
            await person.sign_up("ola@example.com")
            page = await person.get("/onboard")
            assert 'id="onboard-refused"' in page.text
            assert page.has("invite") and 'id="onboard-provider"' not in page.text
        finally:
            await person.close()


async def test_a_sealed_answer_opens_only_in_its_own_draft(browser_for, sessions) -> None:
    """A key copied into another person's draft (its row) does not open there: it is asked for again."""
    ada, bob = browser_for(), browser_for()
    for person, email in ((ada, "pia@example.com"), (bob, "quinn@example.com")):
        await person.sign_up(email)
        await person.submit("/onboard/provider", {"model_provider": "openai", "model_openai": "gpt-5.5"})
    await ada.submit("/onboard/key", {"api_key": OPENAI_KEY})
    sealed = (await _draft_row(sessions, "pia@example.com")).api_key_sealed
    bobs = await _draft_row(sessions, "quinn@example.com")
    async with sessions() as session:
        await session.execute(update(OnboardingDraft).where(OnboardingDraft.id == bobs.id)
                              .values(api_key_sealed=sealed))
        await session.commit()
    page = await bob.get("/onboard")
    assert _step(page) == 2 and not page.has("A key is saved")
    assert (await ada.get("/onboard/key")).has("A key is saved (ending …6789)")


async def test_deploy_sent_twice_makes_one_assistant_and_both_answers_show_it(browser_for, sessions,
                                                                             telegram) -> None:
    person = browser_for()
    await _through_step_3(person, telegram, email="ray@example.com", username="ray_bot")
    review = await person.get("/onboard/review")
    first, second = await asyncio.gather(*(person.post("/onboard/deploy", {}, csrf=review.csrf) for _ in range(2)))
    assert _instance_id(first) == _instance_id(second)
    async with sessions() as session:
        assert len(list(await session.scalars(select(Instance.id)))) == 1
    await _final_progress_page(person, _instance_id(first))
