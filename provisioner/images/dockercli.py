"""The `docker` command line, with DOCKER_HOST pointed at the engine we were given.

The CLI rather than the Engine API: `docker import` and `docker build` stream large tarballs and
handle the engine's progress protocol for us, and the same commands work by hand when debugging.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import IO

from provisioner.images.errors import ImageBuildError


def docker_env(docker_host: str | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def docker(args: list[str], docker_host: str | None, *, stdin: str | None = None,
           check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`; with check, a failure raises with the command and docker's own words."""
    try:
        done = subprocess.run(["docker", *args], env=docker_env(docker_host, **extra_env), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise ImageBuildError("the `docker` command was not found: install docker.io "
                              "(scripts/ensure-docker.sh does it and starts an engine)") from None
    if check and done.returncode != 0:
        raise ImageBuildError(f"docker {args[0]} failed (exit {done.returncode}): {last_lines(done.stderr)}")
    return done


class DockerStream:
    """`docker ARGS` reading what the caller writes to .stdin; finish() waits and checks it."""

    def __init__(self, args: list[str], docker_host: str | None, what: str, **extra_env: str) -> None:
        self.what = what
        # output into files, not pipes: a full stderr pipe would block docker while we still write
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(["docker", *args], env=docker_env(docker_host, **extra_env),
                                             stdin=subprocess.PIPE, stdout=self._out, stderr=self._err)
        except FileNotFoundError:
            self._out.close(), self._err.close()
            raise ImageBuildError("the `docker` command was not found: install docker.io") from None
        assert self._process.stdin is not None
        self.stdin: IO[bytes] = self._process.stdin

    def finish(self) -> str:
        """Close stdin, wait, and return docker's stdout; a failure raises with docker's own words."""
        try:
            self.stdin.close()
        except BrokenPipeError:
            pass  # docker exited early; its stderr says why
        code = self._process.wait()
        out, err = (self._read(f) for f in (self._out, self._err))
        if code != 0:
            raise ImageBuildError(f"{self.what} failed (exit {code}): {last_lines(err)}")
        return out.strip()

    def abort(self) -> str:
        """Stop docker after our side failed; returns what docker said, for the error message."""
        self._process.kill()
        self._process.wait()
        self._out.close()
        return last_lines(self._read(self._err))

    @staticmethod
    def _read(file: IO[bytes]) -> str:
        with file:
            file.seek(0)
            return file.read().decode(errors="replace")


def last_lines(text: str, count: int = 5) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no message"
