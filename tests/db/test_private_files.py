"""Private files and directories: 0600 and 0700 whatever the umask, existing ones tightened."""

from __future__ import annotations

from sqlalchemy import text

from db.engine import create_engine
from db.private_files import private_dir, private_file
from tests.support.file_modes import loose, modes_under


async def test_sqlite_files_are_private_while_the_database_is_open(tmp_path, permissive_umask) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'clawfleet.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            modes = modes_under(tmp_path / "data")
    finally:
        await engine.dispose()
    assert {"clawfleet.db", "clawfleet.db-wal", "clawfleet.db-shm"} <= set(modes)
    assert loose(modes) == {}


def test_existing_paths_are_tightened_and_new_parents_made_private(tmp_path, permissive_umask) -> None:
    (tmp_path / "old").mkdir(mode=0o755)
    (tmp_path / "old" / "file").write_text("kept")
    (tmp_path / "old" / "file").chmod(0o644)
    private_dir(tmp_path / "old")
    private_file(tmp_path / "old" / "file")
    private_file(tmp_path / "new" / "deeper" / "file")
    assert loose(modes_under(tmp_path / "old")) == loose(modes_under(tmp_path / "new")) == {}
    assert (tmp_path / "old" / "file").read_text() == "kept"
