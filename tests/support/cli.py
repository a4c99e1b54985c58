"""`clawfleet ...` run as the command it is, in a process of its own, on a SQLite file of the
test's own (another process writing to the suite's shared SQLite file would pull it from under
the suite's open connections)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"


def run_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_DATABASE_URL": database_url(tmp_path),
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
