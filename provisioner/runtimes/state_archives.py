"""What both runtimes share to back up and restore an instance's state with OpenClaw's own
`openclaw backup` (docs/cli/backup.md in the package): the commands, and where a restored
archive keeps the state.

Measured here (OpenClaw 2026.9.6, a fresh gateway): `backup create --verify` on a live gateway
takes 5.2 s (process runtime) and 9.0 s (docker), 47-48 KB; its SQLite databases are captured with
SQLite's online backup API, so the gateway keeps running. The archive must be written outside the
state dir: the process runtime writes it in the instance's own directory, the docker runtime in a
backups volume of its own (the engine's archive API cannot read a container's tmpfs, and a tmpfs
counts against the container's memory), streamed out by `cat` over exec.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import PurePosixPath

from db.redaction import redact

ARCHIVE_NAME = "state.tar.gz"


class StateArchiveFailed(RuntimeError):
    """An `openclaw backup` command that failed; the message holds its output's end (masked)."""


def create_argv(output: str) -> list[str]:
    return ["backup", "create", "--verify", "--json", "--output", output]


def restore_argv(archive: str, target: str) -> list[str]:
    return ["backup", "restore", archive, "--target", target, "--json"]


# Non-interactive, as the docs' restore sequence asks before the gateway starts on restored state:
# safe automatic migrations apply, nothing prompts (docs/cli/doctor/running.md).
DOCTOR_ARGV = ["doctor", "--non-interactive"]


def check(what: str, exit_code: int, output: str) -> None:
    if exit_code != 0:
        raise StateArchiveFailed(f"openclaw {what} failed (exit {exit_code}): {redact(output.strip()[-600:])}")


def state_asset(manifest: dict) -> PurePosixPath:
    """Where the restored state dir is, relative to the restore target (the manifest's `state`
    asset: its archivePath keeps the archive root)."""
    for asset in manifest.get("assets", []):
        if asset.get("kind") == "state":
            path = PurePosixPath(asset["archivePath"])
            if path.is_absolute() or ".." in path.parts:
                raise StateArchiveFailed("the archive's state path is not inside it")
            return path
    raise StateArchiveFailed("the archive holds no OpenClaw state")


def manifest_name(target_listing: list[str]) -> str:
    """The one `<root>/manifest.json` among the names at the top of a restore target."""
    roots = [name for name in target_listing if not name.startswith(".")]
    if len(roots) != 1:
        raise StateArchiveFailed("the restored archive does not have one root")
    return f"{roots[0]}/manifest.json"


def parse_manifest(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        raise StateArchiveFailed("the restored archive's manifest is not JSON") from None


def tar_header(name: str, size: int, uid: int, mode: int = 0o600) -> bytes:
    """The header of a one-file tar stream (for the engine's archive upload), the file's bytes
    to follow, then `tar_end(size)`."""
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode, entry.uid, entry.gid = size, mode, uid, uid
    return entry.tobuf(format=tarfile.PAX_FORMAT)


def tar_end(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE)


def scratch_name() -> str:
    return f"restore-{uuid.uuid4().hex[:12]}"
