"""Gateway log files: size-based rotation, tail, and follow.

The gateway writes its stdout straight into the file (it must keep running when the platform
exits, so no pipe through us). Rotation therefore copies and truncates, like logrotate's
copytruncate: the writer appends (O_APPEND) and simply continues at the new end. The platform
rotates them every few seconds while gateways run (ProcessRuntime.keep_logs).

Every read is bounded: a tail seeks back from the end in blocks (never reading the file from the
top), a line is cut at MAX_LINE_BYTES, and a follower holds at most one read and one partial line.
File I/O runs in a thread so a large file never stalls the event loop. LineCutter also puts the
docker runtime's log frames back together into lines. Lines come out as the gateway wrote them:
the instance service redacts them on the way out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from db.private_files import open_private

MAX_LINE_BYTES = 8 * 1024  # longer lines are cut here (the rest up to the newline is dropped)
READ_BLOCK = 64 * 1024  # what a tail reads per step back, and a follower per poll
CUT_MARK = " [cut]"


def open_log(path: Path) -> BinaryIO:
    """The log file opened for appending, made when missing; its mode 0600 either way."""
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "ab")


def backup(path: Path, index: int = 1) -> Path:
    return path.with_name(f"{path.name}.{index}")


def rotate_if_large(path: Path, max_bytes: int, backups: int) -> bool:
    if not path.exists() or path.stat().st_size <= max_bytes:
        return False
    for index in range(backups - 1, 0, -1):
        older = backup(path, index)
        if older.exists():
            older.replace(backup(path, index + 1))
    with open(path, "r+b") as source, os.fdopen(open_private(backup(path), os.O_WRONLY | os.O_TRUNC), "wb") as copy:
        shutil.copyfileobj(source, copy)
        # What the gateway wrote during the copy goes along too, so the window in which a line
        # could be lost is the moment between this last read and the truncate.
        shutil.copyfileobj(source, copy)
        source.truncate(0)
    return True


class LineCutter:
    """Bytes in, complete lines out; a line longer than MAX_LINE_BYTES is cut there and the rest
    of it dropped, so at most one bounded partial line is ever held."""

    def __init__(self) -> None:
        self.pending = b""
        self.dropping = False  # inside the rest of a line already cut

    def feed(self, data: bytes) -> list[str]:
        lines = []
        *complete, rest = data.split(b"\n")
        for piece in complete:
            if self.dropping:
                self.dropping = False
            else:
                lines.append(_text(self.pending + piece))
            self.pending = b""
        if not self.dropping:
            self.pending += rest
            if len(self.pending) > MAX_LINE_BYTES:
                lines.append(_text(self.pending))
                self.pending, self.dropping = b"", True
        return lines

    def rest(self) -> list[str]:
        """The last line when the input ended without a newline."""
        line, self.pending = self.pending, b""
        return [_text(line)] if line else []


def _text(line: bytes) -> str:
    if len(line) > MAX_LINE_BYTES:
        return line[:MAX_LINE_BYTES].decode(errors="replace").rstrip("\r") + CUT_MARK
    return line.decode(errors="replace").rstrip("\r")


def last_lines(path: Path, count: int) -> tuple[list[str], int]:
    """The last `count` lines of the log (reaching into its newest backup when the log was just
    rotated) and the log's size, where a follower goes on. Reads at most about
    (count + 1) * MAX_LINE_BYTES from the end of each file."""
    size = path.stat().st_size if path.exists() else 0
    if count <= 0:
        return [], size
    lines = _last_lines_of(path, count, size)
    if len(lines) < count and backup(path).exists():
        lines = _last_lines_of(backup(path), count - len(lines), None) + lines
    return lines, size


def _last_lines_of(path: Path, count: int, size: int | None) -> list[str]:
    """Seek back from `size` (the end) in blocks until `count` newlines or the byte budget."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END) if size is None else min(size, handle.seek(0, os.SEEK_END))
        budget = (count + 1) * (MAX_LINE_BYTES + 1)
        start, data = end, b""
        while start > 0 and data.count(b"\n") <= count and end - start < budget:
            step = min(READ_BLOCK, start, budget - (end - start))
            start -= step
            handle.seek(start)
            data = handle.read(step) + data
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the newline ending the last line
    if start > 0 and pieces:
        pieces.pop(0)  # the first piece is the end of a line that began before what was read
    return [_text(piece) for piece in pieces[-count:]]


async def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    return await asyncio.to_thread(last_lines, path, count)


def _read_from(path: Path, position: int) -> tuple[int, bytes]:
    """The file's size now and at most READ_BLOCK bytes from `position` (all in a thread)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size <= position:
                return size, b""
            handle.seek(position)
            return size, handle.read(READ_BLOCK)
    except FileNotFoundError:
        return 0, b""


async def follow_lines(path: Path, position: int, poll_s: float = 0.25) -> AsyncIterator[str]:
    """New lines of the log from `position` on, for as long as the caller reads. A rotation
    (the log shorter than where we were) is followed: the copy's rest first, then the new log."""
    cutter = LineCutter()
    while True:
        size, chunk = await asyncio.to_thread(_read_from, path, position)
        if size < position:
            while rest := (await asyncio.to_thread(_read_from, backup(path), position))[1]:
                position += len(rest)
                for line in cutter.feed(rest):
                    yield line
            position = 0
            continue
        if not chunk:
            await asyncio.sleep(poll_s)
            continue
        position += len(chunk)
        for line in cutter.feed(chunk):
            yield line
