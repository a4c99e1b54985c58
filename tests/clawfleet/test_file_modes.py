"""DATA_DIR and the database and key files in it are private to the platform's user,
whatever the umask it runs under."""

from __future__ import annotations

import os
import subprocess
import sys

from db.keyfile import load_keyring
from tests.support.file_modes import loose, modes_under


def test_migrate_and_the_key_ring_leave_a_fresh_data_dir_private(tmp_path, permissive_umask) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(data_dir)}
    env.pop("CLAWFLEET_DATABASE_URL", None)
    migrated = subprocess.run([sys.executable, "-m", "clawfleet.cli", "migrate"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # inherits the umask
    assert migrated.returncode == 0, migrated.stderr
    load_keyring(data_dir, [])

    modes = modes_under(data_dir)
    assert {".", "clawfleet.db", "secret.keys"} <= set(modes)
    assert modes["."] == 0o700
    assert modes["clawfleet.db"] == modes["secret.keys"] == 0o600
    assert loose(modes) == {}  # the -wal and -shm files too, while they exist
