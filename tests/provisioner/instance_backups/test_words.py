"""How a backup is said to its owner: every kind has its words, sizes and dates read as people write them."""

from __future__ import annotations

from datetime import UTC, datetime

from db.models import BACKUP_KINDS
from provisioner.instance_backups.words import KIND_WORDS, kind_text, size_text, when_text

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def test_every_kind_of_backup_has_its_words() -> None:
    assert set(KIND_WORDS) == set(BACKUP_KINDS)
    assert [kind_text(kind) for kind in ("manual", "scheduled", "pre-restore", "pre-upgrade")] == [
        "by you", "scheduled", "before a restore", "before an upgrade"]


def test_sizes() -> None:
    assert [size_text(n) for n in (0, 999, 1000, 47_800, 999_499, 999_600, 3_200_000, 12_000_000_000)] == [
        "0 bytes", "999 bytes", "1.0 KB", "48 KB", "999 KB", "1.0 MB", "3.2 MB", "12 GB"]


def test_dates_in_words() -> None:
    assert when_text(datetime(2026, 3, 5, 9, 7, tzinfo=UTC), NOW) == "today at 09:07 UTC"
    assert when_text(datetime(2026, 3, 4, 23, 1, tzinfo=UTC), NOW) == "yesterday at 23:01 UTC"
    assert when_text(datetime(2026, 1, 2, 3, 4, tzinfo=UTC), NOW) == "January 2 at 03:04 UTC"
    assert when_text(datetime(2025, 12, 31, 1, 1, tzinfo=UTC), NOW) == "December 31, 2025 at 01:01 UTC"
