"""The installed `clawfleet` command run as an operator runs it, in a process of its own, with
only the settings given (the test process's own key ring, database and passphrase settings do
not leak into it); by default on a SQLite file of the test's own (another process writing to the
suite's shared SQLite file would pull it from under the suite's open connections)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLAWFLEET = Path(sys.executable).parent / "clawfleet"
_NOT_INHERITED = {"CLAWFLEET_SECRET_KEYS", "CLAWFLEET_SECRET_KEYS_FILE", "CLAWFLEET_DATABASE_URL",
                  "CLAWFLEET_BACKUP_PASSPHRASE"}


def clawfleet_env(data_dir: Path, database_url: str | None = None, **settings: str) -> dict[str, str]:
    """The environment of a command for the install in data_dir; settings by their lower-case names."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    env["CLAWFLEET_DATA_DIR"] = str(data_dir)
    if database_url:
        env["CLAWFLEET_DATABASE_URL"] = database_url
    return env | {f"CLAWFLEET_{name.upper()}": value for name, value in settings.items()}


def run_clawfleet(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command's outcome; stdin is not a terminal, so nothing can be asked."""
    return subprocess.run([str(CLAWFLEET), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"


def run_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`clawfleet ARGS` over the install in tmp_path and its own SQLite file, with `env` on top."""
    return run_clawfleet(clawfleet_env(tmp_path, database_url(tmp_path)) | (env or {}), *args, cwd=tmp_path)
