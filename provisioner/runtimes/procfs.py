"""What Linux's /proc says about processes: liveness, identity (start time), sessions."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name is in parentheses and may contain spaces: split after its last ')'
    return raw[raw.rindex(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has exited


def start_time(pid: int) -> int | None:
    """Clock ticks since boot when the process started: with the pid, a unique identity."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent_id(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def session_id(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[3]) if fields else None


def cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(PROC / str(pid) / "cwd"))
    except OSError:
        return None


def command(pid: int) -> list[str]:
    """The process's argv as it shows it now (a process may retitle itself)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def session_members(leader: int) -> list[int]:
    return [pid for pid in _pids() if session_id(pid) == leader and is_alive(pid)]


def session_alive(leader: int) -> bool:
    """True while the leader or any process of its session lives (gateways spawn helpers)."""
    return bool(session_members(leader))


def signal_session(leader: int, sig: signal.Signals) -> None:
    for pid in session_members(leader):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def processes_by_directory(root: Path) -> dict[Path, list[int]]:
    """Live processes whose working directory is a direct child of `root`, by directory."""
    found: dict[Path, list[int]] = {}
    for pid in _pids():
        directory = cwd(pid)
        if directory is not None and directory.parent == root and is_alive(pid):
            found.setdefault(directory, []).append(pid)
    return found


def eldest(pids: list[int]) -> int | None:
    """The process of the group whose parent is outside it: the one that started the rest."""
    members = set(pids)
    roots = [pid for pid in pids if parent_id(pid) not in members]
    return min(roots, key=lambda pid: start_time(pid) or 0) if roots else None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and of its children it has waited for (utime, stime, cutime,
    cstime): a helper that exits hands its time on to its parent, so a tree's sum only grows."""
    fields = _stat_fields(pid)
    return sum(int(tick) for tick in fields[11:15]) / CLOCK_TICKS if fields else 0.0


def resident_bytes(pid: int) -> int:
    """A process's resident set (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
