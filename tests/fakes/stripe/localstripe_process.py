"""One localstripe server as a child process on 127.0.0.1, for a whole pytest session.

localstripe's own command binds every interface (`::`) and pickles its whole state to
/tmp/localstripe.pickle after every change, a file every run on the machine shares. This
launcher runs the same aiohttp app bound to loopback only, with the pickling switched off, so
two test sessions never see each other's objects; tests reset it with `DELETE /_config/data`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.fakes.stripe.protocol import LOOPBACK

LAUNCHER = (
    "import logging, sys\n"
    "from aiohttp import web\n"
    "from localstripe import resources, server\n"
    "resources.Store.dump_to_disk = lambda self: None  # no shared /tmp/localstripe.pickle\n"
    "log = logging.getLogger('aiohttp.access')\n"
    "log.setLevel(logging.INFO)\n"
    "log.addHandler(logging.StreamHandler())\n"
    "web.run_app(server.app, host=sys.argv[1], port=int(sys.argv[2]), access_log=log)\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class LocalStripeProcess:
    """`start(log_path)` launches it and waits until it answers; `stop()` ends it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, log_path: Path, timeout: float = 20.0) -> LocalStripeProcess:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self._process = subprocess.Popen([sys.executable, "-c", LAUNCHER, LOOPBACK, str(self.port)],
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {self._process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"localstripe did not answer on {self.url} within {timeout} s: {self._log_tail()}")
            time.sleep(0.05)
        return self

    def reset(self) -> None:
        """Forget every object (localstripe's `DELETE /_config/data`)."""
        request = urllib.request.Request(f"{self.url}/_config/data", method="DELETE")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def stop(self, grace: float = 5.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _answers(self) -> bool:
        try:
            self.reset()
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-2000:] or "(empty log)"
