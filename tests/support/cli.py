"""The installed `clawfleet` command run as an operator runs it, with only the settings given
(none of the test process's own CLAWFLEET_* keys, database or passphrase leak into it)."""

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
