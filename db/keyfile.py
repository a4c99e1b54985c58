"""Where the key ring comes from: CLAWFLEET_SECRET_KEYS, else a key file made on first run."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

import structlog

from db.private_files import private_dir, write_private
from db.sealing import KeyRing, generate_key

log = structlog.get_logger(__name__)

KEY_FILE_NAME = "secret.keys"


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def load_keyring(data_dir: Path, configured: Sequence[str]) -> KeyRing:
    """The configured keys if any; else DATA_DIR/secret.keys, created (mode 0600) when missing."""
    if configured:
        return KeyRing.from_encoded(configured)
    path = key_file(private_dir(data_dir))
    if not path.exists():
        _create_key_file(path)
    return KeyRing.from_encoded(read_key_file(path))


def read_key_file(path: Path) -> list[str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("key file is readable by other users; run chmod 600", path=str(path), mode=oct(mode))
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file atomically, never leaving it readable by others."""
    write_private(path, (_KEY_FILE_HEADER + "".join(f"{key}\n" for key in keys)).encode())


_KEY_FILE_HEADER = (
    "# ClawFleet secret keys: the first seals, all open. Back this file up;\n"
    "# without it the sealed API keys and bot tokens in the database cannot be opened.\n"
)


def _create_key_file(path: Path) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.new")
    write_key_file(tmp, [generate_key()])
    try:
        os.link(tmp, path)  # appears whole or not at all; fails if another process won
    except FileExistsError:
        return
    finally:
        tmp.unlink()
    log.warning(
        "CLAWFLEET_SECRET_KEYS is not set: generated a secret key; back it up",
        path=str(path),
    )
