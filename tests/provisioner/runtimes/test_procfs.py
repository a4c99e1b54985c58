"""What /proc says about processes, read from real processes; and which of them is a gateway."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from provisioner.runtimes import procfs
from provisioner.runtimes.process import is_gateway_command


def test_a_process_command_line_and_identity_come_from_proc() -> None:
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"]
    with subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout.readline() == "up\n"  # it runs its own program now, not a fork of ours
            assert procfs.command(child.pid) == argv
            assert procfs.parent_id(child.pid) == os.getpid()
            assert procfs.session_id(child.pid) == child.pid  # a session of its own
            assert procfs.is_alive(child.pid) and procfs.start_time(child.pid) >= procfs.start_time(os.getpid())
        finally:
            child.kill()
    assert not procfs.is_alive(child.pid) and procfs.command(child.pid) == []


@pytest.mark.parametrize(("argv", "gateway"), [
    (["/opt/node/bin/node", "/opt/openclaw/openclaw.mjs", "gateway", "run"], True),  # as spawned
    (["openclaw"], True),  # the title while it loads
    (["openclaw-gateway"], True),  # the title once it runs
    (["/opt/node/bin/node", "/opt/openclaw/dist/process/spawn-broker/worker.js"], False),
    (["/opt/node/bin/node", "/opt/openclaw/dist/infra/sqlite-readonly-location.worker.js",
      "--openclaw-sqlite-readonly-child", "session"], False),
    (["/opt/node/bin/node", "/opt/openclaw/openclaw.mjs", "config", "validate"], False),  # exec'd CLI
    ([], False),
])
def test_only_the_gateway_itself_counts_not_its_helpers(argv: list[str], gateway: bool) -> None:
    assert is_gateway_command(argv) is gateway
