"""`clawfleet admin link`: the operator's way to hand over a link when no email or chat can carry
it, run as the command it is, on a database of its own (another process writing to the suite's
shared SQLite file would pull it from under the suite's open connections)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from accounts.login_links import LoginLinks
from accounts.users import Accounts
from db.engine import create_engine, create_session_factory

PUBLIC = "https://claw.example.test"


@pytest.fixture
async def database(tmp_path) -> AsyncIterator[Callable[..., Awaitable]]:
    """Runs `clawfleet migrate`, then gives a way to act on the database between commands."""
    assert _run(tmp_path, "migrate").returncode == 0

    async def on(action):
        engine = create_engine(_url(tmp_path))
        try:
            return await action(create_session_factory(engine))
        finally:
            await engine.dispose()  # closed before the next command opens the file

    yield on


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_DATABASE_URL": _url(tmp_path),
           "CLAWFLEET_PUBLIC_URL": PUBLIC}
    return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("kind", "purpose", "path"), [("verify-email", "verify_email", "/verify-email"),
                                                        ("reset-password", "reset_password", "/reset-password"),
                                                        ("login", "login", "/login/link")])
async def test_admin_link_prints_a_working_link_for_the_account(tmp_path, database, kind, purpose, path) -> None:
    ada, _ = await database(lambda sessions: Accounts(sessions).register("ada@example.com", "correct horse battery"))
    done = _run(tmp_path, "admin", "link", kind, "Ada@Example.com")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{PUBLIC}{path}?token=cf_link_") and "\n" not in url
    assert "works once" in done.stderr
    token = url.partition("?token=")[2]
    assert await database(lambda sessions: LoginLinks(sessions).usable(token, purpose))
    if purpose == "login":
        assert (await database(lambda sessions: LoginLinks(sessions).redeem(token))).id == ada.id


async def test_admin_link_names_what_is_wrong(tmp_path, database) -> None:
    unknown = _run(tmp_path, "admin", "link", "login", "nobody@example.com")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "No account has the email nobody@example.com" in unknown.stderr
    assert _run(tmp_path, "admin", "link", "login", "not-an-email").returncode == 1
    assert _run(tmp_path, "admin", "link", "unlock", "ada@example.com").returncode == 2  # no such kind
