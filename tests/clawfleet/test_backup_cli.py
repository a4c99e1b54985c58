"""`clawfleet backup` and `clawfleet restore` run as the installed command, as an operator runs
them: the passphrase from the environment or typed on a terminal, the key ring put where the
restored install reads it, and every refusal a line saying what to do, with nothing changed."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import stat
import subprocess
import termios
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.engine import create_engine, create_session_factory
from db.keyfile import key_file, load_keyring, read_key_file
from db.models import Instance
from db.sealing import KeyRing, generate_key, open_from
from tests.support.builders import new_instance, new_user
from tests.support.cli import CLAWFLEET, clawfleet_env, run_clawfleet
from tests.support.services import empty_database

PASSPHRASE = "staple battery horse correct"
API_KEY = "sk-proj-backedUpBackedUp0123456789"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def platform(tmp_path) -> AsyncIterator[tuple[Path, str]]:
    """A migrated install (SQLite, generated key file) with an instance whose API key is sealed."""
    data = tmp_path / "old"
    assert run_clawfleet(clawfleet_env(data), "migrate", cwd=tmp_path).returncode == 0
    ring = load_keyring(data, [])
    user = new_user(email="ada@example.com")
    instance = new_instance(ring, user, api_key=API_KEY)
    engine = create_engine(f"sqlite+aiosqlite:///{(data / 'clawfleet.db').resolve()}")
    async with create_session_factory(engine)() as session:
        session.add(user)
        await session.flush()
        session.add(instance)
        await session.commit()
    await engine.dispose()
    yield data, str(instance.id)


async def _opened_api_key(database_url: str, instance_id: str, keys: list[str]) -> str:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            row = await session.get(Instance, uuid.UUID(instance_id))
        return open_from(KeyRing.from_encoded(keys), row, "api_key_sealed").get_secret_value()
    finally:
        await engine.dispose()


async def test_back_up_then_restore_into_an_empty_install_on_postgresql(tmp_path, platform) -> None:
    old, instance_id = platform
    backup = tmp_path / "platform.backup"
    made = run_clawfleet(clawfleet_env(old, backup_passphrase=PASSPHRASE), "backup", "--output", str(backup), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"wrote {backup}" in made.stdout and "and 1 key(s)" in made.stdout
    assert _mode(backup) == 0o600
    old_keys = read_key_file(key_file(old))
    assert all(secret not in made.stdout + made.stderr for secret in [PASSPHRASE, *old_keys])

    new = tmp_path / "new"
    async with empty_database("postgresql", tmp_path) as url:
        env = clawfleet_env(new, url, backup_passphrase=PASSPHRASE)
        restored = run_clawfleet(env, "restore", str(backup), cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert "restored" in restored.stdout and f"wrote the backup's 1 key(s) to {key_file(new)}" in restored.stdout
        assert all(secret not in restored.stdout + restored.stderr for secret in [PASSPHRASE, *old_keys])
        assert read_key_file(key_file(new)) == old_keys and _mode(key_file(new)) == 0o600
        assert await _opened_api_key(url, instance_id, read_key_file(key_file(new))) == API_KEY
        assert run_clawfleet(env, "migrate", "--check", cwd=tmp_path).returncode == 0

        again = run_clawfleet(env, "restore", str(backup), cwd=tmp_path)
        assert again.returncode == 1 and again.stdout == ""
        assert "already holds 1 account(s), 1 instance(s)" in again.stderr and "--force" in again.stderr
        forced = run_clawfleet(env, "restore", "--force", str(backup), cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert "replaced what the database held: 1 account(s), 1 instance(s)" in forced.stdout
        assert await _opened_api_key(url, instance_id, read_key_file(key_file(new))) == API_KEY


async def test_a_wrong_passphrase_or_a_cut_file_is_refused_and_changes_nothing(tmp_path, platform) -> None:
    old, _ = platform
    backup = tmp_path / "platform.backup"
    assert run_clawfleet(clawfleet_env(old, backup_passphrase=PASSPHRASE), "backup", "-o", str(backup), cwd=tmp_path).returncode == 0
    new = tmp_path / "new"

    wrong = run_clawfleet(clawfleet_env(new, backup_passphrase=PASSPHRASE.upper()), "restore", str(backup), cwd=tmp_path)
    assert wrong.returncode == 1
    assert "wrong passphrase for this backup; nothing was changed" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not new.exists()

    backup.write_bytes(backup.read_bytes()[:-100])
    cut = run_clawfleet(clawfleet_env(new, backup_passphrase=PASSPHRASE), "restore", str(backup), cwd=tmp_path)
    assert cut.returncode == 1 and "damaged or cut short" in cut.stderr and not new.exists()


def test_without_a_passphrase_or_with_a_short_one_no_backup_is_written(tmp_path) -> None:
    backup = tmp_path / "platform.backup"
    missing = run_clawfleet(clawfleet_env(tmp_path / "data"), "backup", "-o", str(backup), cwd=tmp_path)
    assert missing.returncode == 1
    assert "set CLAWFLEET_BACKUP_PASSPHRASE, or run this on a terminal" in missing.stderr
    short = run_clawfleet(clawfleet_env(tmp_path / "data", backup_passphrase="hunter2"), "backup", "-o", str(backup), cwd=tmp_path)
    assert short.returncode == 1 and "7 characters long; use at least 12" in short.stderr
    assert "hunter2" not in short.stderr
    nowhere = run_clawfleet(clawfleet_env(tmp_path / "data", backup_passphrase="a passphrase long enough"),
                            "backup", "-o", str(backup), cwd=tmp_path)
    assert nowhere.returncode == 1 and "there is no database at" in nowhere.stderr, nowhere.stderr
    assert not backup.exists() and not (tmp_path / "data" / "clawfleet.db").exists()  # none made either


async def test_configured_keys_must_open_the_backup_or_the_keys_go_to_a_file_named(tmp_path, platform) -> None:
    old, instance_id = platform
    backup = tmp_path / "platform.backup"
    assert run_clawfleet(clawfleet_env(old, backup_passphrase=PASSPHRASE), "backup", "-o", str(backup), cwd=tmp_path).returncode == 0
    new = tmp_path / "new"
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"

    unrelated = clawfleet_env(new, url, backup_passphrase=PASSPHRASE, secret_keys=generate_key())
    refused = run_clawfleet(unrelated, "restore", str(backup), cwd=tmp_path)
    assert refused.returncode == 1
    assert "CLAWFLEET_SECRET_KEYS cannot open 1 of the backup's sealed secret(s)" in refused.stderr
    assert "--keys-output FILE" in refused.stderr and not key_file(new).exists()

    keys_out = tmp_path / "restored.keys"
    written = run_clawfleet(unrelated, "restore", "--keys-output", str(keys_out), str(backup), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert f"set CLAWFLEET_SECRET_KEYS_FILE={keys_out}" in written.stdout
    assert read_key_file(keys_out) == read_key_file(key_file(old)) and _mode(keys_out) == 0o600
    assert not key_file(new).exists()
    assert await _opened_api_key(url, instance_id, read_key_file(keys_out)) == API_KEY

    opening = clawfleet_env(new, url, backup_passphrase=PASSPHRASE, secret_keys_file=str(keys_out))
    kept = run_clawfleet(opening, "restore", "--force", str(backup), cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "the configured key ring opens every restored secret" in kept.stdout


def test_the_passphrase_is_typed_twice_on_a_terminal(tmp_path) -> None:
    data = tmp_path / "data"
    assert run_clawfleet(clawfleet_env(data), "migrate", cwd=tmp_path).returncode == 0
    load_keyring(data, [])
    backup = tmp_path / "platform.backup"

    status, output = _on_terminal(clawfleet_env(data), ["backup", "-o", str(backup)], tmp_path, [PASSPHRASE, PASSPHRASE + "x"])
    assert status == 1 and "the two passphrases differ" in output and not backup.exists(), output
    status, output = _on_terminal(clawfleet_env(data), ["backup", "-o", str(backup)], tmp_path, [PASSPHRASE, PASSPHRASE])
    assert status == 0, output
    assert backup.exists() and PASSPHRASE not in output  # typed without echo
    status, output = _on_terminal(clawfleet_env(tmp_path / "new"), ["restore", str(backup)], tmp_path, [PASSPHRASE])
    assert status == 0 and "restored" in output, output


def _on_terminal(env: dict[str, str], args: list[str], cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Runs the command on a pseudo-terminal of its own (its controlling terminal, which getpass
    reads), typing each answer after a prompt; its exit status and everything it showed."""
    main, terminal = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen([str(CLAWFLEET), *args], env=env, cwd=cwd, stdin=terminal, stdout=terminal,
                               stderr=terminal, start_new_session=True, preexec_fn=take_terminal)
    os.close(terminal)
    shown, pending, answered = b"", list(answers), 0
    try:
        while select.select([main], [], [], 60)[0]:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the command ended and the terminal closed
                break
            shown += chunk
            # a new prompt: getpass turns echo off (and drops anything typed early) before showing it
            if pending and shown[answered:].rstrip().endswith(b":"):
                os.write(main, pending.pop(0).encode() + b"\n")
                answered = len(shown)
    finally:
        os.close(main)
    return process.wait(timeout=60), shown.decode(errors="replace")
