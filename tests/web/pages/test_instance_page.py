"""/instances/{id}: the facts and health of one assistant, its actions as forms, its settings,
its masked logs and its deletion; and nothing of it for anyone else."""

from __future__ import annotations

import json
import re

from db.status import Status
from tests.web.pages.owned_instances import ANOTHER_KEY, OPENAI_KEY, created, offered_actions, settled, signed_up
from tests.support.model_keys import key_sent_for


async def _sse(person, path: str) -> tuple[int, str]:
    async with person.http.get(person.api.url(path), headers={"Accept": "text/event-stream"}) as response:
        return response.status, await response.text()


async def test_the_page_shows_the_facts_health_and_the_actions_a_running_one_allows(browser_for, site,
                                                                                   telegram) -> None:
    person, user = await signed_up(browser_for)
    bot = telegram.add_bot(username="ada_helper_bot")
    instance = await created(site, user, bot=bot)
    page = await person.get(f"/instances/{instance.id}")
    assert page.status == 200
    assert page.has('data-field="badge">Running</span>') and page.has("It is up and answering.")
    assert page.has("gpt-5.5") and page.has("OpenAI") and page.has("@ada_helper_bot")
    assert page.has('data-field="telegram_user_id">4242<')
    assert page.has(site.platform.instances.public_url(instance))
    assert page.has('data-field="live">yes<') and page.has('data-field="ready">yes<')
    assert page.has("321 MB of 1536 MB")  # what the runtime reports
    assert offered_actions(page.text) == {"restart", "stop"}
    assert 'aria-live="polite"' in page.text and 'id="health"' in page.text
    assert page.has('<pre class="log-view" id="log-view" aria-live="off"')
    assert page.has(f'href="/api/instances/{instance.id}/logs?tail=200"')  # the log without JavaScript
    assert 'id="resources"' in page.text and page.has("CPU and memory")
    assert 'id="pairing"' not in page.text  # it has an owner
    assert OPENAI_KEY not in page.text and bot.token not in page.text


async def test_without_an_owner_it_waits_for_a_pairing_code(browser_for, site, telegram) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user, owner=None, bot=telegram.add_bot(username="unpaired_bot"))
    page = await person.get(f"/instances/{instance.id}")
    assert page.has("waiting for a pairing code") and 'id="pairing"' in page.text


async def test_stop_start_and_restart_through_their_forms(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    runtime = site.platform.runtime
    page_path = f"/instances/{instance.id}"

    stopped = await person.submit(page_path, {}, action=f"{page_path}/stop")
    assert stopped.url.endswith(f"{page_path}?notice=stop") and stopped.has("Stopping it.")
    assert (await settled(site, user, instance.id, Status.STOPPED)).status == Status.STOPPED
    page = await person.get(page_path)
    assert page.has('data-field="badge">Stopped</span>') and offered_actions(page.text) == {"start"}
    assert page.has('data-field="live">no<')

    started = await person.submit(page_path, {}, action=f"{page_path}/start")
    assert started.has("Starting it") and 'id="progress"' in started.text
    await settled(site, user, instance.id, Status.RUNNING)
    starts = len(runtime.starts)

    restarted = await person.submit(page_path, {}, action=f"{page_path}/restart")
    assert restarted.has("Restarting it") and 'id="progress"' in restarted.text
    after = await settled(site, user, instance.id, Status.RUNNING)
    assert len(runtime.starts) == starts + 1
    page = await person.get(page_path)
    assert page.has(f'data-field="restart_count">{after.restart_count}<')
    assert offered_actions(page.text) == {"restart", "stop"}


async def test_an_action_in_progress_offers_no_buttons(browser_for, site, sessions) -> None:
    from sqlalchemy import update

    from db.models import Instance
    from db.types import utcnow

    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    async with sessions() as session:  # as a restart another process is doing leaves the row
        await session.execute(update(Instance).where(Instance.id == instance.id).values(
            lease_holder="elsewhere", lease_expires_at=utcnow().replace(year=utcnow().year + 1), action="restart"))
        await session.commit()
    page = await person.get(f"/instances/{instance.id}")
    assert offered_actions(page.text) == set() and page.has("Restarting: wait for it to finish.")
    assert page.has('data-field="badge">Restarting</span>') and 'id="progress"' in page.text
    async with sessions() as session:
        await session.execute(update(Instance).where(Instance.id == instance.id).values(
            lease_holder=None, lease_expires_at=None, action=None))
        await session.commit()


async def test_a_refused_action_is_said_at_the_top(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    page_path = f"/instances/{instance.id}"
    await person.submit(page_path, {}, action=f"{page_path}/stop")
    await settled(site, user, instance.id, Status.STOPPED)
    refused = await person.submit(page_path, {}, action=f"{page_path}/stop")
    assert refused.status == 409
    assert refused.has('<div class="alert alert-error" role="alert">Stop refused: This instance is already stopped.')


async def test_settings_errors_sit_next_to_their_field_and_secrets_are_never_shown(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    settings = f"/instances/{instance.id}/settings"
    form = await person.get(settings)
    assert form.status == 200 and form.has("•••••••• saved") and OPENAI_KEY not in form.text

    bad_key = await person.submit(settings, {"model_provider": "openai", "model": "gpt-5.5",
                                             "api_key": "sk-ant-api03-notOpenAIatAll0123456789"})
    assert bad_key.status == 400 and re.search(r'id="api_key-error">[^<]*OpenAI', bad_key.text)
    assert "notOpenAIatAll" not in bad_key.text

    no_key = await person.submit(settings, {"model_provider": "anthropic", "model": ""})
    assert no_key.status == 400 and no_key.has('id="api_key-error">Switching to Anthropic (Claude) needs its API key')
    assert re.search(r'<option value="anthropic" selected>', no_key.text)  # what was chosen is kept

    bad_model = await person.submit(settings, {"model_provider": "openai", "model": "claude-opus-5"})
    assert bad_model.status == 400 and 'id="model-error"' in bad_model.text


async def test_a_saved_change_offers_the_restart_that_applies_it(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    settings = f"/instances/{instance.id}/settings"
    saved = await person.submit(settings, {"model_provider": "openai", "model": "gpt-6-sol", "api_key": ANOTHER_KEY})
    assert saved.status == 200 and saved.url.endswith("?notice=saved_restart")
    assert saved.has("Saved. Restart to apply.")
    assert re.search(r'id="notice">.*?action="/instances/[^"]+/restart"', saved.text, re.S)
    assert ANOTHER_KEY not in saved.text and OPENAI_KEY not in saved.text
    changed = await site.platform.instances.get(user, instance.id)
    assert changed.model == "gpt-6-sol"

    same = await person.submit(settings, {"model_provider": "openai", "model": "gpt-6-sol", "api_key": ""})
    assert same.has("Nothing changed")

    await person.submit(f"/instances/{instance.id}", {}, action=f"/instances/{instance.id}/restart")
    await settled(site, user, instance.id, Status.RUNNING)
    assert await key_sent_for(site.platform.sessions, site.platform.keyring, site.platform.runtime.starts[-1]) \
        == ANOTHER_KEY
    assert site.platform.runtime.starts[-1].model == "gpt-6-sol"


async def test_logs_page_and_stream_never_show_the_instance_secrets(browser_for, site, telegram) -> None:
    person, user = await signed_up(browser_for)
    bot = telegram.add_bot(username="log_bot")
    instance = await created(site, user, bot=bot)
    site.platform.runtime.logs_by_instance[instance.id] += [
        f"request failed with key {OPENAI_KEY}", f"telegram token {bot.token} rejected", "all good"]
    status, stream = await _sse(person, f"/api/instances/{instance.id}/logs?tail=200&follow=1")
    assert status == 200 and "event: log" in stream and "all good" in stream
    status, plain = 0, ""
    async with person.http.get(person.api.url(f"/api/instances/{instance.id}/logs?tail=200")) as response:
        status, plain = response.status, await response.text()
    assert status == 200 and "request failed with key" in plain
    page = await person.get(f"/instances/{instance.id}")
    for shown in (stream, plain, page.text):
        assert OPENAI_KEY not in shown and bot.token not in shown


async def test_delete_keeps_or_erases_the_data_as_chosen(browser_for, site, settings_for) -> None:
    person, user = await signed_up(browser_for)
    runtime = site.platform.runtime
    kept = await created(site, user)
    confirm = await person.get(f"/instances/{kept.id}/delete")
    assert confirm.status == 200 and confirm.has("Keep the data for 30 days") and confirm.has("Erase everything now")

    unchosen = await person.submit(f"/instances/{kept.id}/delete", {})
    assert unchosen.status == 400 and unchosen.has("Choose whether to keep the data or erase it.")

    gone = await person.submit(f"/instances/{kept.id}/delete", {"data": "keep"})
    assert gone.url.endswith("/dashboard?notice=deleted") and gone.has("Your assistant is being deleted.")
    await site.platform.manager.wait_idle()
    assert runtime.removed[kept.id] is True  # keep_data

    erased = await created(site, user)
    await person.submit(f"/instances/{erased.id}/delete", {"data": "erase"})
    await site.platform.manager.wait_idle()
    assert runtime.removed[erased.id] is False


async def test_another_person_gets_404_for_every_page_form_and_stream(browser_for, site) -> None:
    owner, owner_user = await signed_up(browser_for)
    instance = await created(site, owner_user)
    await owner.get(f"/instances/{instance.id}")  # a progress record exists for the stream routes
    stranger, _ = await signed_up(browser_for)
    base = f"/instances/{instance.id}"
    csrf = (await stranger.get("/dashboard")).csrf
    for path in (base, f"{base}/settings", f"{base}/delete"):
        page = await stranger.get(path)
        assert page.status == 404 and page.has("Page not found"), path
    for path, fields in ((f"{base}/stop", {}), (f"{base}/restart", {}), (f"{base}/start", {}),
                         (f"{base}/settings", {"model": "gpt-6-sol"}), (f"{base}/delete", {"data": "erase"})):
        page = await stranger.post(path, fields, csrf=csrf)
        assert page.status == 404, path
    for path in (f"/api/instances/{instance.id}/logs?tail=200&follow=1", f"/api/instances/{instance.id}/progress"):
        status, body = await _sse(stranger, path)
        assert status == 404 and json.loads(body)["error"]["code"] == "not_found", path
    for path in (f"/api/instances/{instance.id}", f"/api/instances/{instance.id}/health"):
        async with stranger.http.get(stranger.api.url(path)) as response:
            assert response.status == 404, path
    assert "sk-proj" not in str(await stranger.get("/dashboard"))
    after = await settled(site, owner_user, instance.id, Status.RUNNING)
    assert after.model == "gpt-5.5"


async def test_an_action_posted_without_the_csrf_token_is_refused(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    refused = await person.post(f"/instances/{instance.id}/stop", {}, csrf="")
    assert refused.status == 403 and refused.has("expired")
    missing = await person.post(f"/instances/{instance.id}/delete", {"data": "erase"})
    assert missing.status == 403
    await site.platform.manager.wait_idle()
    assert (await site.platform.instances.get(user, instance.id)).status == Status.RUNNING
