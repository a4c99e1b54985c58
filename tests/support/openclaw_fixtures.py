"""The installed OpenClaw runtime for tests that run the real CLI or real gateways."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from provisioner.openclaw.install import OpenClawInstall, find_install
from tests.support.services import service_missing

RUNTIME_DIR = Path(os.environ.get("CLAWFLEET_RUNTIME_DIR", Path.home() / ".cache" / "clawfleet" / "runtime"))


@pytest.fixture(scope="session")
def openclaw_install() -> OpenClawInstall:
    install = find_install(RUNTIME_DIR, DEFAULT_OPENCLAW_VERSION)
    if install is None:
        service_missing(f"OpenClaw {DEFAULT_OPENCLAW_VERSION} is not installed in {RUNTIME_DIR} "
                        "(make test installs it: clawfleet runtime install)")
    return install
