"""Suspending and resuming through the admin pages: the gateway stops and starts again, the owner
is told, the audit log names the admin, and billing's resume does not lift an admin's suspension."""

from __future__ import annotations

from sqlalchemy import select

from db.models import AuditLog
from db.status import Status
from tests.web.pages.owned_instances import created, settled, signed_up


async def _suspend(admin_browser, instance_id, reason: str):
    return await admin_browser.submit(f"/admin/instances/{instance_id}/suspend", {"reason": reason})


async def test_an_admin_suspends_and_resumes_an_instance_through_the_pages(site, admin, browser_for, told) -> None:
    admin_browser, _ = admin
    _, owner = await signed_up(browser_for, "ada@example.com")
    instance = await created(site, owner)
    runtime = site.platform.runtime

    confirm = await admin_browser.get(f"/admin/instances/{instance.id}/suspend")
    assert confirm.status == 200 and confirm.has("Suspend") and confirm.has(instance.subdomain)
    done = await _suspend(admin_browser, instance.id, "spam reported")
    assert done.status == 200 and done.has("The instance is suspended")
    stopped = await settled(site, owner, instance.id, Status.SUSPENDED)
    assert stopped.admin_suspended_at is not None and stopped.admin_suspended_from == Status.RUNNING
    assert instance.id in runtime.stops and instance.id not in runtime.gateways
    assert any(user_id == owner.id and "suspended" in text and "spam reported" in text for user_id, text in told.sent)

    page = await admin_browser.get(f"/admin/instances?q={instance.id}")
    assert page.has("by an operator") and page.has("Resume")

    await admin_browser.submit(f"/admin/instances/{instance.id}/resume", {})
    running = await settled(site, owner, instance.id, Status.RUNNING)
    assert running.admin_suspended_at is None and instance.id in runtime.gateways
    assert any(user_id == owner.id and "resumed" in text for user_id, text in told.sent)

    async with site.platform.sessions() as session:
        actions = {(row.action, row.actor) for row in await session.scalars(
            select(AuditLog).where(AuditLog.instance_id == instance.id))}
    assert {("instance.admin_suspend", "admin:root@example.com"),
            ("instance.admin_resume", "admin:root@example.com")} <= actions


async def test_a_billing_resume_does_not_lift_an_admins_suspension(site, admin, browser_for) -> None:
    admin_browser, _ = admin
    _, owner = await signed_up(browser_for)
    held = await created(site, owner)
    await _suspend(admin_browser, held.id, "abuse")
    await settled(site, owner, held.id, Status.SUSPENDED)
    service = site.platform.instances

    assert await service.start_paid(owner.id) == []  # what billing does when a subscription pays again
    assert (await settled(site, owner, held.id, Status.SUSPENDED)).admin_suspended_at is not None

    assert await service.suspend_unpaid(owner.id, "Your subscription has ended.") == []  # suspended already
    assert (await settled(site, owner, held.id, Status.SUSPENDED)).admin_suspended_at is not None

    # billing's own suspension, by contrast, is lifted by the same call
    await admin_browser.submit(f"/admin/instances/{held.id}/resume", {})
    await settled(site, owner, held.id, Status.RUNNING)
    await service.suspend_unpaid(owner.id, "Your subscription has ended.")
    await settled(site, owner, held.id, Status.SUSPENDED)
    assert await service.start_paid(owner.id) == [held.id]
    await settled(site, owner, held.id, Status.RUNNING)


async def test_an_admins_suspension_survives_billing_and_a_resume_brings_back_a_stopped_one_stopped(
        site, admin, browser_for) -> None:
    admin_browser, _ = admin
    person, owner = await signed_up(browser_for)
    instance = await created(site, owner)
    await site.platform.instances.stop(owner, instance.id)
    await settled(site, owner, instance.id, Status.STOPPED)
    await _suspend(admin_browser, instance.id, "")
    await settled(site, owner, instance.id, Status.SUSPENDED)

    refused = await person.post(f"/instances/{instance.id}/start", {}, csrf=(await person.get("/dashboard")).csrf)
    assert refused.status == 409 and refused.has("suspended by the platform's operator")

    await admin_browser.submit(f"/admin/instances/{instance.id}/resume", {})
    await settled(site, owner, instance.id, Status.STOPPED)


async def test_suspending_all_of_a_users_instances(site, admin, browser_for, told) -> None:
    admin_browser, _ = admin
    _, owner = await signed_up(browser_for)
    instance = await created(site, owner)
    confirm = await admin_browser.get(f"/admin/users/{owner.id}/suspend")
    assert confirm.has(instance.subdomain)
    await admin_browser.submit(f"/admin/users/{owner.id}/suspend", {"reason": "unpaid invoice"})
    await settled(site, owner, instance.id, Status.SUSPENDED)
    again = await admin_browser.submit(f"/admin/instances/{instance.id}/suspend", {"reason": "x"})
    assert again.status == 409 and again.has("suspended by an operator already")
    await admin_browser.submit(f"/admin/users/{owner.id}/resume", {})
    await settled(site, owner, instance.id, Status.RUNNING)


async def test_bad_input_is_named_next_to_its_field(site, admin, browser_for) -> None:
    admin_browser, _ = admin
    _, owner = await signed_up(browser_for)
    instance = await created(site, owner)
    long = await _suspend(admin_browser, instance.id, "x" * 501)
    assert long.status == 400 and 'id="reason-error"' in long.text and long.has("at most 500 characters")
    assert (await admin_browser.get("/admin/instances/not-an-id/suspend")).status == 404
    unknown = await admin_browser.get("/admin/instances?status=sleeping")
    assert unknown.status == 400 and 'id="status-error"' in unknown.text
    assert (await admin_browser.get("/admin/users?after=garbage")).status == 400


async def test_the_admin_section_is_a_404_for_everyone_else(site, admin, browser_for) -> None:
    stranger, _ = await signed_up(browser_for)
    anonymous = browser_for()
    for path in ("/admin", "/admin/users", "/admin/instances", "/admin/audit", "/admin/broadcasts"):
        assert (await stranger.get(path)).status == 404, path
        assert (await anonymous.get(path)).status == 404, path
    admin_browser, _ = admin
    csrf = (await stranger.get("/dashboard")).csrf
    assert (await stranger.post("/admin/broadcasts", {"text": "hi", "confirm": "yes"}, csrf=csrf)).status == 404
    assert "/admin/users" not in (await stranger.get("/dashboard")).text
    assert "/admin/users" in (await admin_browser.get("/dashboard")).text
