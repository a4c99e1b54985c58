"""The Debian base root filesystem: made once per machine with debootstrap, kept as a tarball.

No image registry is reachable here, but a Debian mirror is (mirror.py: CLAWFLEET_DEBIAN_MIRROR,
else the host's own), so `debootstrap --variant=minbase` makes what `FROM debian:bookworm-slim`
would give (about 40 s). The tarball is named after everything that went into it, so a changed
recipe makes a new one and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from provisioner.images.dockercli import last_lines
from provisioner.images.errors import ImageBuildError
from provisioner.images.mirror import resolve_mirror

# the package lists and downloaded .debs only matter to apt, which never runs in the image
EXCLUDED = ("./var/lib/apt/lists/*", "./var/cache/apt/*", "./var/cache/debconf/*-old", "./var/log/*")


def base_tarball(cache_dir: Path, suite: str, packages: tuple[str, ...], *, mirror: str | None = None,
                 log: Callable[[str], None] = lambda _: None) -> Path:
    """The cached tarball of a minbase `suite` with `packages`; bootstrapped when missing, from
    `mirror` (None: the one the host's apt sources name)."""
    mirror = resolve_mirror(mirror, suite)
    key = json.dumps([suite, "minbase", sorted(packages), mirror, platform.machine()])
    target = cache_dir / f"debian-{suite}-minbase-{hashlib.sha256(key.encode()).hexdigest()[:12]}.tar"
    if target.is_file():
        log(f"Debian {suite} root filesystem: {target} (cached)")
        return target
    debootstrap = _debootstrap(log)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"bootstrapping Debian {suite} (minbase, {', '.join(packages)}) from {mirror}")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".rootfs-") as work:
        root, partial = Path(work) / "root", Path(work) / "rootfs.tar"
        try:
            _run([debootstrap, "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror],
                 "debootstrap")
            _run(["tar", "--numeric-owner", *(f"--exclude={p}" for p in EXCLUDED),
                  "-C", str(root), "-cf", str(partial), "."], "tar of the root filesystem")
            partial.rename(target)  # same directory tree, so atomic: a tarball present is complete
        finally:
            _unmount_below(root)  # an interrupted debootstrap can leave /proc mounted in the target
    return target


def _debootstrap(log: Callable[[str], None]) -> str:
    if os.geteuid() != 0:
        raise ImageBuildError("building the image offline runs debootstrap, which needs root")
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if found:
        return found
    if not shutil.which("apt-get"):
        raise ImageBuildError("debootstrap is not installed and there is no apt-get to install it")
    log("installing debootstrap from Debian's packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install debootstrap", env=env)
    found = shutil.which("debootstrap", path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        raise ImageBuildError("apt-get installed debootstrap, but the command is not there")
    return found


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise ImageBuildError(f"{what}: `{argv[0]}` was not found") from None
    if done.returncode != 0:
        raise ImageBuildError(f"{what} failed (exit {done.returncode}): {last_lines(done.stdout + done.stderr)}")


def _unmount_below(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):  # innermost first
        subprocess.run(["umount", "-l", point], stdin=subprocess.DEVNULL, capture_output=True)
