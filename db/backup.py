"""The platform's backup: every table's rows and the key ring together (one cannot open the
sealed secrets without the other), in one file encrypted with a passphrase (db/backup_cipher.py).

A backup is one consistent snapshot of a running platform's database. A restore brings the
target database to the schema revision the backup was taken at, loads the rows, then migrates
to this code's head, all in one transaction: so a backup made by an older release restores
into a newer one, and a failed restore leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from db.backup_cipher import BackupError, DamagedBackup, decrypt, encrypt
from db.backup_tables import TableRows, one_transaction, read_tables, replace_rows, rows_in
from db.migrate import move_to, revisions
from db.models import Base
from db.private_files import write_private
from db.sealing import KeyRing, SealedSecretError, associated_data, sealed_columns

PAYLOAD_FORMAT = 1


class TargetNotEmpty(BackupError):
    def __init__(self, held: dict[str, int]) -> None:
        self.held = held
        super().__init__(f"the database already holds {describe_rows(held)}")


@dataclass
class Archive:
    clawfleet_version: str
    alembic_revision: str
    created_at: datetime
    source: str  # the database it was taken from: sqlite or postgresql
    keys: list[SecretStr]  # the key ring, in order: the first seals, all open
    tables: dict[str, TableRows]

    @property
    def row_count(self) -> int:
        return sum(len(table.rows) for table in self.tables.values())


@dataclass
class RestoreReport:
    rows: int
    replaced: dict[str, int]  # what the target held before, per table (all zero for a fresh install)


async def take_backup(engine: AsyncEngine, keys: list[SecretStr], clawfleet_version: str) -> Archive:
    async with one_transaction(engine, snapshot=True) as conn:
        revision = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
        if revision is None:
            raise BackupError("the database has no ClawFleet schema (run `clawfleet migrate`): nothing to back up")
        tables = await read_tables(conn)
        source = conn.dialect.name
    return Archive(clawfleet_version, revision, datetime.now(timezone.utc), source, list(keys),
                   {table.name: table for table in tables})


async def restore(engine: AsyncEngine, archive: Archive, *, replace: bool,
                  before_commit: Callable[[], None] = lambda: None) -> RestoreReport:
    """Refuses (TargetNotEmpty) a database holding accounts or instances unless `replace`.
    `before_commit` runs once every row is in (it puts the key ring in place): if it raises,
    nothing is restored."""
    known = revisions()
    if archive.alembic_revision not in known:
        raise BackupError(f"the backup's schema revision {archive.alembic_revision} is newer than this ClawFleet "
                          f"knows (its newest is {known[-1]}): restore it with ClawFleet "
                          f"{archive.clawfleet_version} or later")
    async with one_transaction(engine) as conn:
        held = await rows_in(conn, [table.name for table in Base.metadata.sorted_tables])
        if (held.get("users") or held.get("instances")) and not replace:
            raise TargetNotEmpty(held)
        await move_to(conn, archive.alembic_revision)
        written = await replace_rows(conn, archive.tables)
        await move_to(conn, known[-1])
        await asyncio.to_thread(before_commit)
    return RestoreReport(written, held)


def unopenable_secrets(archive: Archive, ring: KeyRing) -> int:
    """How many of the backup's sealed values this key ring cannot open."""
    failed = 0
    for table, columns in sealed_columns():
        dumped = archive.tables.get(table.name)
        for record in dumped.records() if dumped else []:
            for column in columns:
                if record.get(column) is None:
                    continue
                try:
                    ring.open(record[column], associated_data(table.name, record["id"], column))
                except SealedSecretError:
                    failed += 1
    return failed


def describe_rows(counts: dict[str, int]) -> str:
    return (f"{counts.get('users', 0)} account(s), {counts.get('instances', 0)} instance(s) and "
            f"{sum(counts.values())} row(s) in all")


async def write_backup(path: Path, archive: Archive, passphrase: str) -> int:
    """Encrypt and write the file (0600, whole or not at all) off the event loop; its size."""
    blob = await asyncio.to_thread(lambda: encrypt(_pack(archive), passphrase))
    try:
        await asyncio.to_thread(write_private, path, blob)
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None
    return len(blob)


async def read_backup(path: Path, passphrase: str) -> Archive:
    try:
        blob = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    return await asyncio.to_thread(lambda: _unpack(decrypt(blob, passphrase)))


def _pack(archive: Archive) -> bytes:
    document = {
        "format": PAYLOAD_FORMAT,
        "clawfleet_version": archive.clawfleet_version,
        "alembic_revision": archive.alembic_revision,
        "created_at": archive.created_at.isoformat(),
        "source": archive.source,
        "keys": [key.get_secret_value() for key in archive.keys],
        "tables": {name: table.to_json() for name, table in archive.tables.items()},
    }
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode())


def _unpack(payload: bytes) -> Archive:
    try:
        document: dict[str, Any] = json.loads(gzip.decompress(payload))
        if document["format"] != PAYLOAD_FORMAT:
            raise BackupError(f"the backup's format {document['format']} is not one this ClawFleet reads: "
                              "restore it with a newer one")
        return Archive(
            clawfleet_version=str(document["clawfleet_version"]),
            alembic_revision=str(document["alembic_revision"]),
            created_at=datetime.fromisoformat(document["created_at"]),
            source=str(document["source"]),
            keys=[SecretStr(str(key)) for key in document["keys"]],
            tables={name: TableRows.from_json(name, data) for name, data in document["tables"].items()},
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        # it passed its integrity check, so this is a file written wrong, not one damaged since
        raise DamagedBackup("the backup's contents are not readable") from None
