"""The Backups section of an instance's page, over real HTTP and in a real Chromium: the list in
words, back up now with its progress, download, restore (into this assistant or a new one) and
delete after pages that say what will happen, refusals in place, and nothing for anyone else."""

from __future__ import annotations

import io
import re
import tarfile
import uuid

from db.status import Status
import pytest

from tests.support.browser import assert_accessible, kind_of, screenshot, screenshots_dir
from tests.support.memory_runtime import STATE_FILE
from tests.support.web_client import serving_pages
from tests.web.pages.owned_instances import created, settled, signed_up


@pytest.fixture
async def site(settings_for, sessions):
    """The site, where a person may have two assistants (a restore into a new one needs room)."""
    async with serving_pages(settings_for(max_instances_per_user=2)) as api:
        yield api


async def _backed_up(site, user, instance_id) -> None:
    await site.platform.backups.back_up(user, instance_id)
    await settled(site, user, instance_id, Status.RUNNING)


def _rows(text: str) -> list[str]:
    return re.findall(r'<tr data-backup="([0-9a-f-]{36})">', text)


def _state_in(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.extractfile(STATE_FILE).read()


async def test_no_backups_yet_says_so_and_offers_the_first(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    page = await person.get(f"/instances/{instance.id}")
    assert 'id="backups"' in page.text and page.has("No backups yet.")
    assert page.has(f'action="/instances/{instance.id}/backups"') and page.has("Back up now")


async def test_back_up_now_shows_its_progress_then_the_backup_in_words(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.states[instance.id] = b"first state"
    path = f"/instances/{instance.id}"

    begun = await person.submit(path, {}, action=f"{path}/backups")
    assert begun.url.endswith(f"{path}?notice=backup") and begun.has("Backing up: follow the steps below.")
    assert 'id="progress"' in begun.text and begun.has("Archiving your assistant's state")
    await settled(site, user, instance.id, Status.RUNNING)

    page = await person.get(path)
    assert len(_rows(page.text)) == 1 and not page.has("No backups yet.")
    assert page.has(">today at ") and page.has(">by you<") and re.search(r">\d+ bytes<|>[\d.]+ KB<", page.text)
    assert (await person.get(f"{path}?notice=backup")).has("Backed up (")  # its outcome, last in its progress


async def test_download_is_the_archive_as_a_file_to_save(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.states[instance.id] = b"what the assistant knew"
    await _backed_up(site, user, instance.id)
    page = await person.get(f"/instances/{instance.id}")
    link = re.search(r'href="(/instances/[^"]+/download)" download', page.text).group(1)
    async with person.http.get(person.api.url(link)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/gzip"
        assert re.fullmatch(r'attachment; filename="openclaw-backup-[\dT-]+Z-[0-9a-f]{8}\.tar\.gz"',
                            response.headers["Content-Disposition"])
        archive = await response.read()
    assert _state_in(archive) == b"what the assistant knew"


async def test_a_damaged_backup_is_refused_with_words_not_an_error_page(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.states[instance.id] = b"soon damaged"
    await _backed_up(site, user, instance.id)
    [backup] = await site.platform.backups.list(user, instance.id)
    stored = site.platform.backups.keeper.local.path(instance.id, backup.id)
    damaged = bytearray(stored.read_bytes())
    damaged[-20] ^= 0xFF  # one byte of the sealed archive changed
    stored.write_bytes(bytes(damaged))
    status, answer = await site.call("GET", f"/api/instances/{instance.id}/backups/{backup.id}/download",
                                     token=await _token_of(site, user))
    assert status == 409 and "damaged" in answer["error"]["message"], answer


async def _token_of(site, user) -> str:
    return (await site.platform.accounts.start_session(user)).token


async def _backup_to_restore(browser_for, site, state: bytes):
    """A person, their assistant backed up with `state`, and the restore page's path of that backup."""
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.states[instance.id] = state
    await _backed_up(site, user, instance.id)
    page = await person.get(f"/instances/{instance.id}")
    return person, user, instance, re.search(r'href="(/instances/[^"]+/restore)"', page.text).group(1)


async def test_restore_into_this_assistant_after_saying_what_happens(browser_for, site) -> None:
    person, user, instance, restore_path = await _backup_to_restore(browser_for, site, b"before")
    runtime = site.platform.runtime
    runtime.states[instance.id] = b"after"

    confirm = await person.get(restore_path)
    assert confirm.status == 200 and confirm.has("Restore the backup of today at")
    assert confirm.has("Into this assistant") and confirm.has("Into a new assistant")
    assert confirm.has("A backup of its current state is taken first (kept as “before a restore”), then it "
                       "stops, its state is replaced with this backup’s, and it starts again.")

    unchosen = await person.submit(restore_path, {})
    assert unchosen.status == 400 and unchosen.has('id="target-error">Choose where to restore it')
    assert runtime.states[instance.id] == b"after"  # nothing happened

    begun = await person.submit(restore_path, {"target": "same"})
    assert begun.url.endswith(f"/instances/{instance.id}?notice=restore") and 'id="progress"' in begun.text
    await settled(site, user, instance.id, Status.RUNNING)
    assert runtime.states[instance.id] == b"before"
    page = await person.get(f"/instances/{instance.id}")
    assert len(_rows(page.text)) == 2 and page.has(">before a restore<")  # the state it replaced, kept


async def test_restore_into_a_new_assistant_leaves_this_one_alone(browser_for, site) -> None:
    person, user, instance, restore_path = await _backup_to_restore(browser_for, site, b"original")
    runtime = site.platform.runtime

    begun = await person.submit(restore_path, {"target": "new"})
    new_id = re.search(r"/instances/([0-9a-f-]{36})\?notice=restore_new$", begun.url).group(1)
    assert new_id != str(instance.id) and begun.has("This is your new assistant")
    await settled(site, user, new_id, Status.RUNNING)
    assert runtime.states[instance.id] == b"original" and runtime.states[uuid.UUID(new_id)] == b"original"

    no_room = await person.submit(restore_path, {"target": "new"})  # a third is beyond the plan
    assert no_room.status == 402 and no_room.has('id="target-error">Your plan allows 2 instance(s)')
    assert no_room.has('value="new" aria-describedby="new-hint" checked')  # the choice kept


async def test_delete_after_confirming(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    await _backed_up(site, user, instance.id)
    page = await person.get(f"/instances/{instance.id}")
    delete_path = re.search(r'href="(/instances/[^"]+/delete)"', page.text[page.text.index('id="backups"'):]).group(1)

    confirm = await person.get(delete_path)
    assert confirm.has("Delete the backup of today at") and confirm.has("This cannot be undone.")
    assert confirm.has("Your assistant itself does not change.")
    deleted = await person.submit(delete_path, {})
    assert deleted.url.endswith(f"/instances/{instance.id}?notice=backup_deleted")
    assert deleted.has("The backup is deleted.") and deleted.has("No backups yet.")
    assert await site.platform.backups.list(user, instance.id) == []
    gone = await person.get(delete_path)
    assert gone.status == 404


async def test_a_refused_backup_is_said_in_the_section(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.archive_delay_s = 2.0
    path = f"/instances/{instance.id}"
    page = await person.get(path)
    await person.post(f"{path}/backups", {}, csrf=page.csrf, follow=False)
    refused = await person.post(f"{path}/backups", {}, csrf=page.csrf)  # a second click, from the same page
    assert refused.status == 409
    section = refused.text[refused.text.index('id="backups"'):]
    assert re.search(r'role="alert">Back up refused: This instance is busy: it is being backed up\.', section)
    assert "Back up now</button>" not in section  # not offered until the first is done
    await settled(site, user, instance.id, Status.RUNNING)
    assert len(await site.platform.backups.list(user, instance.id)) == 1


async def test_a_failed_backup_says_why_in_its_progress(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.backups_fail = True
    path = f"/instances/{instance.id}"
    await person.submit(path, {}, action=f"{path}/backups")
    await settled(site, user, instance.id, Status.RUNNING)
    page = await person.get(f"{path}?notice=backup")
    assert page.has("The backup failed: openclaw backup create failed (exit 1): disk full")
    assert page.has("No backups yet.")


async def test_another_persons_instance_and_backups_are_404(browser_for, site) -> None:
    owner, owner_user = await signed_up(browser_for)
    instance = await created(site, owner_user)
    await _backed_up(site, owner_user, instance.id)
    (backup,) = await site.platform.backups.list(owner_user, instance.id)
    stranger, stranger_user = await signed_up(browser_for)
    own = await created(site, stranger_user)
    csrf = (await stranger.get("/dashboard")).csrf
    theirs = f"/instances/{instance.id}/backups/{backup.id}"
    crossed = f"/instances/{own.id}/backups/{backup.id}"  # their backup under the stranger's own instance
    for path in (f"{theirs}/restore", f"{theirs}/delete", f"{theirs}/download", f"{crossed}/restore",
                 f"{crossed}/delete", f"/instances/{own.id}/backups/not-a-backup/restore"):
        page = await stranger.get(path)
        assert page.status == 404, path
    for path, fields in ((f"/instances/{instance.id}/backups", {}), (f"{theirs}/restore", {"target": "same"}),
                         (f"{theirs}/restore", {"target": "new"}), (f"{theirs}/delete", {}),
                         (f"{crossed}/restore", {"target": "same"}), (f"{crossed}/delete", {})):
        page = await stranger.post(path, fields, csrf=csrf)
        assert page.status == 404, path
    crossed_download = await stranger.get(f"{crossed}/download")
    assert crossed_download.status == 404 and crossed_download.has("Download refused: No such backup.")
    assert [b.id for b in await site.platform.backups.list(owner_user, instance.id)] == [backup.id]


async def test_the_section_and_its_pages_in_a_real_browser(browser_for, site, page, phone_page) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    site.platform.runtime.archive_delay_s = 1.0  # long enough to see the progress live
    cookie = {"name": "clawfleet_session", "value": person.cookie("clawfleet_session"), "url": site.url("/")}
    await page.context.add_cookies([cookie])
    await page.goto(site.url(f"/instances/{instance.id}"))
    assert await page.locator("#backup-list-empty").is_visible()
    await page.get_by_role("button", name="Back up now").click()
    await page.locator("#progress li", has_text="Backed up (").wait_for()  # live, then the page reloads
    await page.locator("#backup-list tbody tr").first.wait_for()
    site.platform.runtime.archive_delay_s = 0
    await _backed_up(site, user, instance.id)
    for each in (page, phone_page):
        await each.context.add_cookies([cookie])
        await each.goto(site.url(f"/instances/{instance.id}#backups"))
        assert await each.locator("#backup-list tbody tr").count() == 2
        assert await each.evaluate("document.documentElement.scrollWidth") <= each.viewport_size["width"]
        await assert_accessible(each)
        await screenshot(each, "instance-backups")
        await each.locator("#backups").screenshot(path=screenshots_dir() / f"backups-section-{kind_of(each)}.png")
        await each.get_by_role("link", name=re.compile("^Restore the backup of")).first.click()
        await each.get_by_role("button", name="Restore it").click()  # nothing chosen: said beside the choice
        assert "Choose where to restore it" in await each.locator("#target-error").inner_text()
        await assert_accessible(each)
        await screenshot(each, "backup-restore")
        await each.goto(site.url(f"/instances/{instance.id}"))
        await each.get_by_role("link", name=re.compile("^Delete the backup of")).first.click()
        await assert_accessible(each)
        await screenshot(each, "backup-delete")
    await page.goto(site.url(f"/instances/{instance.id}"))
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name=re.compile("^Download the backup of")).first.click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".tar.gz")
    assert _state_in(open(await download.path(), "rb").read()) == b""
