"""The audit log page: each filter narrows what is listed, pages follow one another, and a bad
filter is named next to its field."""

from __future__ import annotations

from datetime import timedelta

from db import audit
from db.models import AuditLog
from db.types import utcnow
from tests.web.pages.owned_instances import signed_up


async def _entries(site, rows: list[dict]) -> None:
    async with site.platform.sessions() as session:
        for row in rows:
            created_at = row.pop("created_at", None)
            audit.record(session, **row)
            await session.flush()
            if created_at is not None:
                entry = (await session.execute(
                    AuditLog.__table__.select().order_by(AuditLog.created_at.desc()).limit(1))).first()
                await session.execute(AuditLog.__table__.update().where(AuditLog.id == entry.id)
                                      .values(created_at=created_at))
        await session.commit()


async def test_each_filter_narrows_the_audit_log(site, admin, browser_for) -> None:
    admin_browser, _ = admin
    _, ada = await signed_up(browser_for, "ada@example.com")
    long_ago = utcnow() - timedelta(days=40)
    instance_id = "0b6f3c1e-7a52-4d8e-9c41-2f5e8a7d6b90"
    await _entries(site, [
        {"actor": "admin:root@example.com", "action": "instance.admin_suspend", "user_id": ada.id,
         "instance_id": __import__("uuid").UUID(instance_id), "details": {"reason": "marker-one"}},
        {"actor": "billing", "action": "instance.suspend", "user_id": ada.id, "details": {"reason": "marker-two"}},
        {"actor": "cli:ops", "action": "admin.broadcast", "details": {"text": "marker-three"},
         "created_at": long_ago},
    ])

    async def shown(query: str) -> set[str]:
        page = await admin_browser.get(f"/admin/audit?{query}")
        assert page.status == 200, page.text
        return {marker for marker in ("marker-one", "marker-two", "marker-three") if marker in page.text}

    assert await shown("") == {"marker-one", "marker-two", "marker-three"}
    assert await shown("actor=admin%3Aroot") == {"marker-one"}
    assert await shown("action=instance.suspend") == {"marker-two"}
    assert await shown("action=instance.") == {"marker-one", "marker-two"}
    assert await shown("user=ada%40example.com") >= {"marker-one", "marker-two"}
    assert "marker-three" not in await shown("user=ada%40example.com")
    assert await shown(f"instance={instance_id}") == {"marker-one"}
    assert await shown(f"until={(long_ago + timedelta(days=1)).date()}") == {"marker-three"}
    assert await shown(f"since={(utcnow() - timedelta(days=1)).date()}&actor=billing") == {"marker-two"}


async def test_bad_audit_filters_are_named_next_to_their_field(site, admin) -> None:
    admin_browser, _ = admin
    for query, field in (("since=yesterday", "since"), ("instance=42", "instance"), ("user=nobody%40example.com", "user"),
                         ("user=not-an-id", "user"), ("after=nonsense", "form")):
        page = await admin_browser.get(f"/admin/audit?{query}")
        assert page.status in (400, 404), (query, page.status)
        assert (f'id="{field}-error"' in page.text) if field != "form" else 'role="alert"' in page.text, query


async def test_the_audit_log_pages_newest_first(site, admin) -> None:
    admin_browser, _ = admin
    await _entries(site, [{"actor": "cli:ops", "action": "test.paged", "details": {"n": f"entry-{n:03d}"}}
                          for n in range(120)])
    seen: list[str] = []
    path = "/admin/audit?action=test.paged"
    while path:
        page = await admin_browser.get(path)
        found = sorted({f"entry-{n:03d}" for n in range(120) if f"entry-{n:03d}" in page.text})
        assert found and not set(found) & set(seen)
        seen += found
        marker = 'href="/admin/audit?action=test.paged&amp;after='
        path = ("/admin/audit?action=test.paged&after=" + page.text.split(marker, 1)[1].split('"', 1)[0]
                .replace("%7E", "~")) if marker in page.text else ""
    assert len(seen) == 120
