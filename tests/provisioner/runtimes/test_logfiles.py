"""Gateway log files: tails read from the end in a thread, lines cut to a bound, follow across
rotation, and a running gateway's log rotated by size (a real process writing its stdout)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from provisioner.openclaw.install import OpenClawInstall
from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.logfiles import CUT_MARK, MAX_LINE_BYTES, LineCutter, backup, open_log, rotate_if_large
from provisioner.runtimes.process import ProcessRuntime
from tests.support.platform_process import free_port


def _runtime(tmp_path: Path, **options) -> ProcessRuntime:
    """The process runtime over a stand-in OpenClaw: `node` runs the package's openclaw.mjs."""
    package = tmp_path / "openclaw"
    package.mkdir(exist_ok=True)
    install = OpenClawInstall(root=tmp_path, version="0", node=Path("/bin/sh"), package_dir=package)
    return ProcessRuntime(tmp_path / "data", install, **options)


def _log_of(runtime: ProcessRuntime, instance_id: uuid.UUID) -> Path:
    runtime.make_layout(instance_id)
    return runtime.gateway_log(instance_id)


async def _lines(runtime: ProcessRuntime, instance_id: uuid.UUID, tail: int) -> list[str]:
    return [line async for line in runtime.logs(instance_id, {}, tail, False)]


async def _followed(runtime: ProcessRuntime, instance_id: uuid.UUID, until: str, tail: int = 0) -> list[str]:
    seen = []
    async with asyncio.timeout(5):
        async for line in runtime.logs(instance_id, {}, tail, True):
            seen.append(line)
            if line.startswith(until):
                return seen
    return seen


def _read_bytes() -> int:
    """Bytes this process has read so far, as the kernel counts them."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines()
                    if line.startswith("rchar:")).split()[1])


async def _max_loop_gap(work) -> tuple[object, float]:
    """`work`'s result and the longest the event loop went without running a ticker meanwhile."""
    gaps, last = [0.0], time.monotonic()

    async def tick():
        nonlocal last
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        ticker.cancel()
    return result, max(gaps)


async def test_a_tail_of_a_big_log_reads_its_end_off_the_event_loop(tmp_path: Path) -> None:
    runtime, instance_id = _runtime(tmp_path), uuid.uuid4()
    log_path = _log_of(runtime, instance_id)
    line = b"2026-12-01T12:00:00.000+00:00 [gateway] an ordinary line of about a hundred bytes, padded " \
           b"out to length\n"
    with open(log_path, "wb") as out:
        out.write(line * (40 * 1024 * 1024 // len(line)))
        out.write(b"".join(b"last %d\n" % n for n in range(10)))

    before = _read_bytes()
    lines, gap = await _max_loop_gap(_lines(runtime, instance_id, 10))
    assert lines == [f"last {n}" for n in range(10)]
    assert _read_bytes() - before < 1024 * 1024  # the end of a 40 MB file, not the file
    assert gap < 0.5  # a guard against a stalled loop, not a speed target


async def test_long_lines_are_cut_in_tails_and_follows(tmp_path: Path) -> None:
    runtime, instance_id = _runtime(tmp_path), uuid.uuid4()
    log_path = _log_of(runtime, instance_id)
    log_path.write_bytes(b"first\n" + b"x" * (3 * MAX_LINE_BYTES) + b"\nafter\n")
    lines = await _lines(runtime, instance_id, 3)
    assert lines == ["first", "x" * MAX_LINE_BYTES + CUT_MARK, "after"]
    assert await _followed(runtime, instance_id, "after", tail=3) == lines

    follower = asyncio.create_task(_followed(runtime, instance_id, "y"))
    await asyncio.sleep(0.3)
    with open_log(log_path) as out:  # a line that never ends is held only so far
        out.write(b"y" * (100 * MAX_LINE_BYTES))
    assert await follower == ["y" * MAX_LINE_BYTES + CUT_MARK]


def test_a_line_that_comes_in_pieces_comes_out_whole() -> None:
    """As the engine sends a container's output: frames, not lines (a secret may span two)."""
    cutter = LineCutter()
    assert cutter.feed(b"key sk-proj-abc") == []
    assert cutter.feed(b"defghijk0123\nnext ") == ["key sk-proj-abcdefghijk0123"]
    assert cutter.feed(b"line") == [] and cutter.rest() == ["next line"] and cutter.rest() == []


async def test_follow_and_tail_go_on_across_a_rotation(tmp_path: Path) -> None:
    runtime, instance_id = _runtime(tmp_path), uuid.uuid4()
    log_path = _log_of(runtime, instance_id)
    with open_log(log_path) as out:
        out.write(b"".join(b"old %d\n" % n for n in range(5)))
    follower = asyncio.create_task(_followed(runtime, instance_id, "new 2", tail=5))
    await asyncio.sleep(0.3)  # it has read the five lines and waits for more
    with open_log(log_path) as out:  # written after the follower's last read, then rotated at once
        out.write(b"old 5\nold 6\n")
    assert rotate_if_large(log_path, 10, 1)
    with open_log(log_path) as out:
        out.write(b"new 0\nnew 1\nnew 2\n")
    assert await follower == [f"old {n}" for n in range(7)] + [f"new {n}" for n in range(3)]

    # the log holds three lines now: its copy gives the rest
    assert await _lines(runtime, instance_id, 5) == ["old 5", "old 6", "new 0", "new 1", "new 2"]


async def test_a_running_gateways_log_is_rotated_by_size(tmp_path: Path) -> None:
    """A stand-in gateway (a shell script run the way the runtime runs OpenClaw) writes about
    1 MB a second to its stdout for as long as it runs."""
    runtime = _runtime(tmp_path, log_max_bytes=256 * 1024, log_check_s=0.1)
    (runtime.install.package_dir / "openclaw.mjs").write_text(
        'line="$(head -c 1000 /dev/zero | tr "\\0" x)"\n'
        'n=0; while true; do n=$((n+1)); echo "line $n $line"; [ $((n % 100)) = 0 ] && sleep 0.1; done\n')
    instance_id = uuid.uuid4()
    request = LaunchRequest(instance_id=instance_id, port=free_port(), provider="openai", model="gpt-5.5",
                            model_credential=SecretStr("sk-proj-" + "a" * 30), gateway_token=SecretStr("g" * 32))
    started = await runtime.start(request, {})
    log_path = runtime.gateway_log(instance_id)
    try:
        largest, rotations, last_backup = 0, 0, None
        for _ in range(100):  # ten seconds at most; three rotations take about one
            await asyncio.sleep(0.1)
            largest = max(largest, log_path.stat().st_size)
            if backup(log_path).exists() and backup(log_path).stat().st_mtime_ns != last_backup:
                rotations, last_backup = rotations + 1, backup(log_path).stat().st_mtime_ns
            if rotations >= 3:
                break
        lines = await _lines(runtime, instance_id, 3)
    finally:
        await runtime.stop(instance_id, started.state, timeout=2)
        await runtime.close()
    assert rotations >= 3
    assert largest < 2 * 256 * 1024  # the limit and what one check period adds
    assert backup(log_path).stat().st_size < 2 * 256 * 1024 and not backup(log_path, 2).exists()
    assert len(lines) == 3 and all(line.startswith("line ") for line in lines)  # still written, still read
