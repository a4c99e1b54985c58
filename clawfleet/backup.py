"""`clawfleet backup` and `clawfleet restore` for an install's settings: where the passphrase
comes from, which key ring goes into a backup, and where a restored key ring goes."""

from __future__ import annotations

import sys
from getpass import getpass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from clawfleet import __version__
from clawfleet.settings import Settings
from db.backup import (Archive, TargetNotEmpty, describe_rows, read_backup, restore, take_backup, unopenable_secrets,
                       write_backup)
from db.backup_cipher import BackupError, check_passphrase
from db.engine import describe_url
from db.keyfile import key_file, read_key_file, write_key_file
from db.private_files import private_dir
from db.sealing import KeyRing, KeyRingError

BACKUP_DESCRIPTION = ("Write every table's rows and the key ring into FILE (mode 0600), encrypted with the passphrase "
                      "CLAWFLEET_BACKUP_PASSPHRASE or, without it, one typed twice on the terminal. A running platform "
                      "may keep working: the backup is one consistent snapshot.")
RESTORE_DESCRIPTION = ("Load a `clawfleet backup` FILE into CLAWFLEET_DATABASE_URL (migrated to the backup's schema, "
                       "loaded in one transaction, then migrated to this release's) and put its key ring where this "
                       "install reads it: DATA_DIR/secret.keys, unless CLAWFLEET_SECRET_KEYS(_FILE) is set and opens "
                       "every restored secret. Stop the platform first.")


def passphrase(settings: Settings, *, confirm: bool) -> str:
    """CLAWFLEET_BACKUP_PASSPHRASE, else typed on the terminal (twice when making a backup)."""
    if settings.backup_passphrase is not None:
        chosen = settings.backup_passphrase.get_secret_value()
    elif sys.stdin.isatty():
        chosen = getpass("Backup passphrase: ")
        if confirm and getpass("The same passphrase again: ") != chosen:
            raise BackupError("the two passphrases differ; nothing was written")
    else:
        raise BackupError("no passphrase: set CLAWFLEET_BACKUP_PASSPHRASE, or run this on a terminal to type it")
    if confirm:
        check_passphrase(chosen)
    return chosen


async def back_up(engine: AsyncEngine, settings: Settings, output: Path, phrase: str) -> str:
    """Writes the backup; what to tell the operator."""
    keys = _current_keys(settings)
    archive = await take_backup(engine, keys, __version__)
    size = await write_backup(output, archive, phrase)
    done = (f"wrote {output} ({size} bytes): {archive.row_count} rows of {len(archive.tables)} tables at schema "
            f"revision {archive.alembic_revision}, and {len(keys)} key(s)")
    unopened = unopenable_secrets(archive, _ring([key.get_secret_value() for key in keys], "the key ring"))
    if unopened:
        done += (f"\nwarning: {unopened} sealed secret(s) in the database do not open with this install's key ring; "
                 "they will not open after a restore either")
    return done


async def open_backup(settings: Settings, source: Path, phrase: str, *, keys_output: Path | None) -> Archive:
    """The backup, decrypted and checked before anything of the install is touched. With
    CLAWFLEET_SECRET_KEYS(_FILE) set (and no --keys-output), those must open every restored
    secret: a restore that leaves secrets nobody can open is refused."""
    archive = await read_backup(source, phrase)
    configured = [key.get_secret_value() for key in settings.secret_keys]
    if keys_output is None and configured:
        _check_configured_keys(settings, archive, configured)
    return archive


async def restore_into(engine: AsyncEngine, settings: Settings, archive: Archive, *,
                       force: bool, keys_output: Path | None) -> str:
    """Restores an opened backup and puts its key ring where this install reads it; what to tell the operator."""
    writes_keys = keys_output is not None or not settings.secret_keys
    destination = keys_output or key_file(settings.data_dir)
    backup_keys = [key.get_secret_value() for key in archive.keys]

    def place_keys() -> None:
        if not writes_keys:
            return
        # into the generated key file, the install's own keys stay behind the backup's: whatever they sealed opens
        kept = read_key_file(destination) if keys_output is None and destination.exists() else []
        try:
            if keys_output is None:
                private_dir(destination.parent)
            write_key_file(destination, backup_keys + [key for key in kept if key not in backup_keys])
        except OSError as exc:
            raise BackupError(f"cannot write the key ring to {destination}: {exc.strerror}") from None

    try:
        report = await restore(engine, archive, replace=force, before_commit=place_keys)
    except TargetNotEmpty as exc:
        raise BackupError(f"{exc}: restore into a fresh install, or pass --force to replace all of it with "
                          "the backup") from None
    lines = [f"restored {report.rows} rows into {describe_url(settings.database_url)} from the backup of "
             f"{archive.created_at:%Y-%m-%d %H:%M} UTC (ClawFleet {archive.clawfleet_version}, schema revision "
             f"{archive.alembic_revision}), now migrated to this release's schema"]
    if sum(report.replaced.values()):
        lines.append(f"replaced what the database held: {describe_rows(report.replaced)}")
    if not writes_keys:
        lines.append("the configured key ring opens every restored secret")
    else:
        lines.append(f"wrote the backup's {len(backup_keys)} key(s) to {destination}")
    if keys_output is not None:
        lines.append(f"set CLAWFLEET_SECRET_KEYS_FILE={keys_output} (and unset CLAWFLEET_SECRET_KEYS) before "
                     "starting the platform")
    return "\n".join(lines)


def _check_configured_keys(settings: Settings, archive: Archive, configured: list[str]) -> None:
    name = "CLAWFLEET_SECRET_KEYS_FILE" if settings.secret_keys_file else "CLAWFLEET_SECRET_KEYS"
    unopened = unopenable_secrets(archive, _ring(configured, name))
    if unopened:
        raise BackupError(f"{name} cannot open {unopened} of the backup's sealed secret(s): add the backup's keys "
                          f"to {name}, or pass --keys-output FILE to write them to a private file and point "
                          "CLAWFLEET_SECRET_KEYS_FILE at it")


def _current_keys(settings: Settings) -> list[SecretStr]:
    if settings.secret_keys:
        return list(settings.secret_keys)
    path = key_file(settings.data_dir)
    if not path.exists():
        raise BackupError(f"no key ring to back up: CLAWFLEET_SECRET_KEYS is not set and {path} does not exist "
                          "(without the keys, a backup's sealed secrets could never be opened)")
    return [SecretStr(key) for key in read_key_file(path)]


def _ring(keys: list[str], name: str) -> KeyRing:
    try:
        return KeyRing.from_encoded(keys)
    except KeyRingError as exc:
        raise BackupError(f"{name}: {exc}") from None
