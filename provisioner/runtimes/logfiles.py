"""Gateway log files: size-based rotation, tail, and follow.

The gateway writes its stdout straight into the file (it must keep running when the platform
exits, so no pipe through us). Rotation therefore copies and truncates, like logrotate's
copytruncate: the writer appends (O_APPEND) and simply continues at the new end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from db.private_files import open_private
from db.redaction import redact


def open_log(path: Path) -> BinaryIO:
    """The log file opened for appending, made when missing; its mode 0600 either way."""
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "ab")


def rotate_if_large(path: Path, max_bytes: int, backups: int) -> bool:
    if not path.exists() or path.stat().st_size <= max_bytes:
        return False
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    newest = path.with_name(f"{path.name}.1")
    with open(path, "rb") as source, os.fdopen(open_private(newest, os.O_WRONLY | os.O_TRUNC), "wb") as copy:
        shutil.copyfileobj(source, copy)
    with open(path, "r+b") as handle:
        handle.truncate(0)
    return True


def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    """The last `count` lines (redacted) and the file position after them."""
    if not path.exists():
        return [], 0
    with open(path, "rb") as handle:
        last = deque((redact(line.decode(errors="replace").rstrip("\n")) for line in handle), maxlen=count)
        return list(last) if count > 0 else [], handle.tell()


async def follow_lines(path: Path, position: int, poll_s: float = 0.25) -> AsyncIterator[str]:
    pending = b""
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < position:  # rotated (truncated): start again from the top
            position, pending = 0, b""
        if size > position:
            with open(path, "rb") as handle:
                handle.seek(position)
                chunk = handle.read(size - position)
            position += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield redact(line.decode(errors="replace"))
        else:
            await asyncio.sleep(poll_s)
