"""`clawfleet admin ...` as the commands they are, beside a running platform on the same database:
a grant shows the admin section in a real browser (404 for anyone else), a suspension asked for at
the command line is carried out by the platform, the audit log reads back with filters. The
section's pages are screenshot on a desktop and a phone and checked for accessibility."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from clawfleet.settings import Settings
from db.status import Status
from tests.support.api_client import migrated
from tests.support.browser import assert_accessible, screenshot
from tests.support.cli import database_url, run_command
from tests.support.web_client import serving_pages
from tests.web.pages.owned_instances import created, settled

PASSWORD = "correct horse battery"
PAGES = ("/admin/users", "/admin/instances", "/admin/audit", "/admin/broadcasts")


async def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The command in its own process, while this one's event loop goes on serving the platform."""
    return await asyncio.to_thread(run_command, tmp_path, *args)


@pytest.fixture
async def platform(tmp_path, telegram):
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=database_url(tmp_path),
                        telegram_api_url=telegram.api_url, start_timeout_s=5, lease_ttl_s=3)
    await migrated(settings)
    async with serving_pages(settings) as api:
        yield api


async def _sign_up(page, platform, email: str) -> None:
    await page.goto(platform.url("/signup"))
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/onboard**")


async def test_a_grant_at_the_command_line_opens_the_admin_section(platform, tmp_path, new_page) -> None:
    admin_page, stranger_page = await new_page("desktop"), await new_page("desktop")
    await _sign_up(admin_page, platform, "root@example.com")
    await _sign_up(stranger_page, platform, "ada@example.com")
    assert (await admin_page.goto(platform.url("/admin/users"))).status == 404

    granted = await run(tmp_path, "admin", "grant", "Root@Example.com")
    assert granted.returncode == 0, granted.stderr
    assert "root@example.com is an admin" in granted.stdout

    async with asyncio.timeout(10):  # a signed-in person's account is read again within a moment
        while (await admin_page.goto(platform.url("/admin/users"))).status != 200:
            await asyncio.sleep(0.3)
    assert await admin_page.locator("h1").inner_text() == "Users"
    assert await admin_page.locator("nav[aria-label=Main] a[href='/admin/users']").count() == 1
    assert await admin_page.get_by_role("cell", name="ada@example.com").count() == 1
    for path in PAGES:
        response = await stranger_page.goto(platform.url(path))
        assert response.status == 404, path
    assert await stranger_page.locator("a[href='/admin/users']").count() == 0

    assert (await run(tmp_path, "admin", "grant", "root@example.com")).returncode == 1  # already one
    assert "No account has the email" in (await run(tmp_path, "admin", "grant", "nobody@example.com")).stderr
    revoked = await run(tmp_path, "admin", "revoke", "root@example.com")
    assert revoked.returncode == 0, revoked.stderr
    async with asyncio.timeout(10):
        while (await admin_page.goto(platform.url("/admin/users"))).status != 404:
            await asyncio.sleep(0.3)


async def test_a_suspension_at_the_command_line_is_carried_out_by_the_running_platform(platform, tmp_path) -> None:
    owner, _ = await platform.platform.accounts.register("ada@example.com", PASSWORD)
    instance = await created(platform, owner)

    done = await run(tmp_path, "admin", "suspend", str(instance.id), "--reason", "abuse report")
    assert done.returncode == 0, done.stderr
    assert f"instance {instance.id}: suspension carried out" in done.stdout
    suspended = await settled(platform, owner, instance.id, Status.SUSPENDED)
    assert suspended.admin_suspended_at is not None and instance.id not in platform.platform.runtime.gateways

    listed = await run(tmp_path, "admin", "instances", "--status", "suspended")
    assert str(instance.id) in listed.stdout and "(by an admin)" in listed.stdout
    resumed = await run(tmp_path, "admin", "resume", "--user", "ada@example.com")
    assert resumed.returncode == 0 and "resume carried out" in resumed.stdout, resumed.stderr
    await settled(platform, owner, instance.id, Status.RUNNING)

    audit = await run(tmp_path, "admin", "audit", "--actor", "cli:", "--action", "instance.")
    lines = audit.stdout.splitlines()
    assert [line.split("\t")[2] for line in lines] == ["instance.admin_resume", "instance.admin_suspend"]
    assert all("ada@example.com" in line and str(instance.id) in line for line in lines)
    assert (await run(tmp_path, "admin", "audit", "--action", "instance.", "--user", "nobody@example.com")).returncode == 1
    bad = await run(tmp_path, "admin", "suspend", "not-an-id")
    assert bad.returncode == 1 and "instance id" in bad.stderr
    users = await run(tmp_path, "admin", "users", "--search", "ada@")
    assert users.stdout.startswith("ada@example.com\t-\t1\t")


async def test_the_admin_pages_on_a_desktop_and_a_phone(platform, tmp_path, new_page) -> None:
    owner, _ = await platform.platform.accounts.register("ada@example.com", PASSWORD)
    await created(platform, owner)
    held = await created(platform, (await platform.platform.accounts.register("bob@example.com", PASSWORD))[0])
    await platform.platform.admin.suspensions.suspend(held.id, actor="cli:ops", reason="abuse report")
    await platform.platform.admin.broadcasts.queue("The platform restarts tonight at 22:00 UTC.", actor="cli:ops")
    for kind in ("desktop", "phone"):
        page = await new_page(kind)
        await _sign_up(page, platform, f"root-{kind}@example.com")
        assert (await run(tmp_path, "admin", "grant", f"root-{kind}@example.com")).returncode == 0
        async with asyncio.timeout(10):
            while (await page.goto(platform.url("/admin/users"))).status != 200:
                await asyncio.sleep(0.3)
        for path in PAGES:
            await page.goto(platform.url(path))
            await assert_accessible(page)
            await screenshot(page, "admin-" + path.rsplit("/", 1)[1])
        await page.goto(platform.url(f"/admin/instances/{held.id}/resume"))
        await assert_accessible(page)
        await screenshot(page, "admin-confirm-resume")
        await page.goto(platform.url("/admin/broadcasts"))
        await page.get_by_role("button", name="Send broadcast").click()  # nothing written, nothing confirmed
        assert await page.locator("#text-error").inner_text() == "Write the message to send."
        await assert_accessible(page)
        await screenshot(page, "admin-broadcast-error")
