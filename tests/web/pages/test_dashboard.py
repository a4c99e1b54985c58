"""/dashboard: the person's assistants as cards, in words, with what needs their attention."""

from __future__ import annotations

from sqlalchemy import update

from db.models import Instance
from db.status import Status
from tests.support.web_client import WebUser, serving_pages
from tests.web.pages.owned_instances import created, signed_up
from web.pages.status_words import STATUS_WORDS

NEW_ASSISTANT = 'class="button" href="/onboard">New assistant'


async def test_signed_out_it_asks_to_sign_in(browser_for) -> None:
    page = await browser_for().get("/dashboard")
    assert page.url.endswith("/login?next=/dashboard")


async def test_an_empty_dashboard_leads_to_creating_an_assistant(browser_for) -> None:
    person, _ = await signed_up(browser_for)
    page = await person.get("/dashboard")
    assert page.status == 200 and page.has("No assistant yet")
    assert page.has('href="/onboard">Create your assistant') and NEW_ASSISTANT not in page.text


async def test_a_running_assistant_shows_its_status_model_bot_uptime_and_restarts(browser_for, site, telegram) -> None:
    person, user = await signed_up(browser_for)
    bot = telegram.add_bot(username="ada_helper_bot")
    instance = await created(site, user, bot=bot, model="gpt-5.5")
    page = await person.get("/dashboard")
    assert page.status == 200
    assert page.has('<span class="badge badge-running" data-field="badge">Running</span>')
    assert page.has("gpt-5.5 · OpenAI")
    assert page.has('<a href="https://t.me/ada_helper_bot" rel="noopener">@ada_helper_bot</a>')
    assert page.has("up less than a minute") and page.has('data-field="restart_count">0<')
    assert page.has(f'href="/instances/{instance.id}"')
    assert "alert-" not in page.text.split('id="instances"')[1]  # nothing needs them
    assert NEW_ASSISTANT not in page.text  # the operator's default: one assistant each
    assert "sk-proj" not in page.text and bot.token not in page.text


async def test_new_assistant_is_offered_while_under_the_limit(settings_for, sessions) -> None:
    async with serving_pages(settings_for(max_instances_per_user=2)) as roomy:
        person = WebUser(roomy)
        try:
            await person.sign_up("two@example.com")
            user = await roomy.platform.accounts.user_for_token(person.cookie("clawfleet_session"))
            await created(roomy, user)
            assert NEW_ASSISTANT in (await person.get("/dashboard")).text
            await created(roomy, user, api_key="sk-proj-anotherKEYanother0123456789")
            full = await person.get("/dashboard")
            assert NEW_ASSISTANT not in full.text and full.has("Your plan allows 2 assistants")
        finally:
            await person.close()


async def test_what_needs_attention_is_said_in_words(browser_for, site, sessions, telegram) -> None:
    person, user = await signed_up(browser_for)
    botless = await created(site, user, owner=None, wait_for=None)
    await site.platform.instances.delete(user, botless.id, purge=True)
    await site.platform.manager.wait_idle()
    instance = await created(site, user, owner=None, bot=telegram.add_bot(username="unpaired_bot"))
    page = await person.get("/dashboard")
    assert page.has("No Telegram owner yet") and page.has(f'href="/instances/{instance.id}#pairing"')
    assert not page.has("No Telegram bot yet")

    async with sessions() as session:  # as the manager leaves one that could not start
        await session.execute(update(Instance).where(Instance.id == instance.id).values(
            status=Status.ERROR, status_reason="the API key was refused by OpenAI", running_since=None))
        await session.commit()
    failed = await person.get("/dashboard")
    assert failed.has('<span class="badge badge-failed" data-field="badge">Failed</span>')
    assert failed.has("It could not start: the API key was refused by OpenAI")

    async with sessions() as session:  # crash-looping: waiting for its next restart
        await session.execute(update(Instance).where(Instance.id == instance.id).values(
            status=Status.PROVISIONING, failure_streak=3, status_reason="the gateway exited (code 1)"))
        await session.commit()
    looping = await person.get("/dashboard")
    assert looping.has("It keeps crashing (3 times in a row).") and looping.has("Last error: the gateway exited")
    assert looping.has(">Starting</span>")


async def test_an_assistant_without_a_bot_is_asked_for_one(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user, owner=None)
    page = await person.get("/dashboard")
    assert page.has("No Telegram bot yet") and page.has(f'href="/instances/{instance.id}/settings"')
    assert not page.has("No Telegram owner yet")  # no bot, nothing to pair


async def test_every_status_has_words() -> None:
    assert set(STATUS_WORDS) == set(Status)
    assert all(words.label and words.meaning for words in STATUS_WORDS.values())


async def test_a_deleted_assistant_is_announced(browser_for) -> None:
    person, _ = await signed_up(browser_for)
    page = await person.get("/dashboard?notice=deleted")
    assert page.has("Your assistant is being deleted.")
    assert not (await person.get("/dashboard?notice=<script>")).has("<script>")
