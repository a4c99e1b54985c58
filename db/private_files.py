"""Files and directories only the platform's user may use, whatever the process umask.

Everything the platform keeps in DATA_DIR is private: the database (password hashes, emails),
the key file, and the instance directories with their configs and logs. Directories are made
0700 and files 0600; a mode passed to mkdir or open is only an upper bound (the umask takes bits
away), so each is set again explicitly.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """path as a directory of mode 0700, made with its missing parents (also 0700) if need be.
    An existing path is tightened: only call this on directories the platform owns."""
    make_missing_dirs(path.parent)
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def make_missing_dirs(path: Path) -> None:
    """Make path and its missing parents with mode 0700, leaving existing ones as they are."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """A descriptor on path opened with flags, the file created when missing; its mode 0600
    either way (os.open leaves an existing file's mode alone)."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> Path:
    """path as a file of mode 0600, made empty (its missing parents 0700) when missing."""
    make_missing_dirs(path.parent)
    os.close(open_private(path, os.O_RDONLY))
    return path


def write_private(path: Path, content: str | bytes) -> None:
    """Replace path with content, mode 0600 (its missing parents 0700): written to a new file
    beside it, flushed to disk, then renamed over it, so a reader (or a crash) sees the old file
    or the whole new one, never a part (and the new inode has one hard link)."""
    make_missing_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
