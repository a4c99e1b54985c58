"""`clawfleet admin link`: the operator's way to hand over a link when no email or chat can carry
it, run as the command it is, on the test's database (SQLite, then PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from accounts.login_links import LoginLinks
from accounts.users import Accounts

PUBLIC = "https://claw.example.test"


def _run(tmp_path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_DATABASE_URL": database_url,
           "CLAWFLEET_PUBLIC_URL": PUBLIC}
    return subprocess.run([sys.executable, "-m", "clawfleet.cli", "admin", "link", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("kind", "purpose", "path"), [("verify-email", "verify_email", "/verify-email"),
                                                        ("reset-password", "reset_password", "/reset-password"),
                                                        ("login", "login", "/login/link")])
async def test_admin_link_prints_a_working_link_for_the_account(tmp_path, database_url, sessions, kind, purpose,
                                                                path) -> None:
    ada, _ = await Accounts(sessions).register("ada@example.com", "correct horse battery")
    done = _run(tmp_path, database_url, kind, "Ada@Example.com")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{PUBLIC}{path}?token=cf_link_") and "\n" not in url
    assert "works once" in done.stderr
    token = url.partition("?token=")[2]
    links = LoginLinks(sessions)
    assert await links.usable(token, purpose)
    if purpose == "login":
        assert (await links.redeem(token)).id == ada.id


async def test_admin_link_names_what_is_wrong(tmp_path, database_url, sessions) -> None:
    unknown = _run(tmp_path, database_url, "login", "nobody@example.com")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "No account has the email nobody@example.com" in unknown.stderr
    assert _run(tmp_path, database_url, "login", "not-an-email").returncode == 1
    assert _run(tmp_path, database_url, "unlock", "ada@example.com").returncode == 2  # argparse: no such kind
