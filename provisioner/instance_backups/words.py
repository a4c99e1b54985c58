"""How a backup is said to its owner, the same on the dashboard and in the bot: what made it,
when, and how big it is."""

from __future__ import annotations

from datetime import datetime, timedelta

from db.types import utcnow

KIND_WORDS = {
    "manual": "by you",
    "scheduled": "scheduled",
    "pre-restore": "before a restore",
    "pre-upgrade": "before an upgrade",
}


def kind_text(kind: str) -> str:
    return KIND_WORDS.get(kind, kind)


def size_text(size: int) -> str:
    """48 KB, 3.2 MB, 1.1 GB: a thousand-based unit, as file managers show downloads."""
    if size < 1000:
        return f"{size} bytes"
    amount, unit = size / 1000, "KB"
    for bigger in ("MB", "GB"):
        if amount < 999.5:
            break
        amount, unit = amount / 1000, bigger
    return f"{amount:.0f} {unit}" if amount >= 10 else f"{amount:.1f} {unit}"


def when_text(moment: datetime, now: datetime | None = None) -> str:
    """'today at 14:05 UTC', 'yesterday at 09:12 UTC', 'March 3 at 14:05 UTC' (with the year
    when it is not this one's), as the pages and the bot write dates."""
    now = now or utcnow()
    clock = f"{moment:%H:%M} UTC"
    if moment.date() == now.date():
        return f"today at {clock}"
    if moment.date() == (now - timedelta(days=1)).date():
        return f"yesterday at {clock}"
    year = f", {moment.year}" if moment.year != now.year else ""
    return f"{moment:%B} {moment.day}{year} at {clock}"
