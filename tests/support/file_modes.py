"""The permission bits of everything under a directory, for tests that files stay private."""

from __future__ import annotations

import stat
from pathlib import Path


def modes_under(root: Path) -> dict[str, int]:
    """Each path under root (root itself as "."), relative to it, with its permission bits."""
    return {str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode) for path in [root, *root.rglob("*")]}


def loose(modes: dict[str, int]) -> dict[str, str]:
    """The entries any other user may read, write or enter, in octal."""
    return {path: oct(mode) for path, mode in modes.items() if mode & 0o077}
