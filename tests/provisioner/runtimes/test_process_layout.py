"""The process runtime's files under DATA_DIR/instances are private to the platform's user,
whatever the umask: its directories 0700, its files 0600."""

from __future__ import annotations

import uuid
from pathlib import Path

from provisioner.openclaw.install import OpenClawInstall
from provisioner.runtimes.logfiles import open_log, rotate_if_large
from provisioner.runtimes.process import COMPILE_CACHE_LINK, INSTANCE_SUBDIRS, ProcessRuntime, placement
from tests.support.file_modes import loose, modes_under


def _runtime(data_dir: Path) -> ProcessRuntime:
    install = OpenClawInstall(root=data_dir / "runtime", version="0.0.0-test", node=Path("/bin/false"),
                              package_dir=data_dir / "runtime" / "openclaw")
    return ProcessRuntime(data_dir, install, log_max_bytes=10, log_backups=2)


def test_the_instance_layout_config_and_rotated_logs_are_private(tmp_path, permissive_umask) -> None:
    data_dir = tmp_path / "data"
    runtime = _runtime(data_dir)
    instance_id = uuid.uuid4()
    home = runtime.make_layout(instance_id)
    runtime.write_config({"gateway": {"port": 20001}}, placement(home).config_path)
    log_path = runtime.gateway_log(instance_id)
    for _ in range(3):
        with open_log(log_path) as out:  # as the gateway's stdout
            out.write(b"a line longer than ten bytes\n")
        assert rotate_if_large(log_path, runtime.log_max_bytes, runtime.log_backups)

    modes = modes_under(data_dir)
    assert set(INSTANCE_SUBDIRS) <= {path.name for path in home.iterdir()}
    assert {"openclaw.json", "gateway.log.1", "gateway.log.2"} <= {Path(path).name for path in modes}
    assert loose(modes) == {}


def test_instances_share_one_compile_cache_per_openclaw_version(tmp_path, permissive_umask) -> None:
    data_dir = tmp_path / "data"
    runtime = _runtime(data_dir)
    first, second = (runtime.make_layout(uuid.uuid4()) for _ in range(2))
    shared = runtime.install.compile_cache_dir
    for home in (first, second):
        link = home / COMPILE_CACHE_LINK
        assert link.is_symlink() and link.resolve() == shared.resolve()
    assert shared.is_dir() and loose(modes_under(data_dir)) == {}

    # Turned off, an instance goes back to a cache of its own (OpenClaw makes it in its TMPDIR);
    # a cache an instance filled on its own before sharing was turned on is left as it is.
    ProcessRuntime(data_dir, runtime.install, shared_compile_cache=False).make_layout(uuid.UUID(first.name))
    assert not (first / COMPILE_CACHE_LINK).exists()
    (first / COMPILE_CACHE_LINK).mkdir()
    runtime.make_layout(uuid.UUID(first.name))
    assert (first / COMPILE_CACHE_LINK).is_dir() and not (first / COMPILE_CACHE_LINK).is_symlink()
