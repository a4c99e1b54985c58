"""Installing Node 24 + OpenClaw: idempotent, offline when present, never fooled by a half-finished
install. A fake `npm` stands in for the registry; the real install is only looked at."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from provisioner.openclaw import install as install_module
from provisioner.openclaw.install import InstallError, find_install, install

VERSION = DEFAULT_OPENCLAW_VERSION

# Lays out what the real packages would, and logs each call (package, PATH's first entry, cache).
FAKE_NPM = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    from pathlib import Path
    assert sys.argv[1:3] == ["install", "--prefix"], sys.argv
    prefix, spec = Path(sys.argv[3]), sys.argv[4]
    name = spec.rpartition("@")[0]
    with open(os.environ["FAKE_NPM_LOG"], "a") as log:
        log.write(json.dumps({{"package": spec, "path0": os.environ["PATH"].split(":")[0],
                              "cache": os.environ.get("npm_config_cache")}}) + "\\n")
    package = prefix / "node_modules" / name
    if name == "openclaw":
        (package / "dist").mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({{"version": os.environ.get("FAKE_NPM_VERSION",
                                                                                     spec.rpartition("@")[2])}}))
        if os.environ.get("FAKE_NPM_FAIL") == "openclaw":  # dies half-way, like a lost connection
            sys.stderr.write("npm ERR! network ECONNRESET\\n")
            sys.exit(1)
        (package / "openclaw.mjs").write_text("// cli")
        (package / "dist" / "index.js").write_text("// entry")
    else:
        node = package / "bin" / "node"
        node.parent.mkdir(parents=True)
        node.write_text("#!/bin/sh\\necho v24.99.0\\n")
        node.chmod(0o755)
""")


@pytest.fixture
def fake_npm(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    monkeypatch.setenv("FAKE_NPM_LOG", str(tmp_path / "npm.log"))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return npm


def _npm_calls(tmp_path: Path) -> list[dict]:
    log = tmp_path / "npm.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_installs_both_parts_with_openclaw_under_node_24(tmp_path, fake_npm) -> None:
    runtime = tmp_path / "runtime"
    done = install(runtime, VERSION, npm=str(fake_npm))
    node_package = install_module._node_package()
    assert done.root == runtime.resolve() and done.version == VERSION
    assert done.node == runtime.resolve() / "node24" / "node_modules" / node_package / "bin" / "node"
    assert done.package_dir == runtime.resolve() / f"openclaw-{VERSION}" / "node_modules" / "openclaw"
    assert done.argv("gateway", "run") == [str(done.node), str(done.package_dir / "openclaw.mjs"), "gateway", "run"]
    assert done.env()["PATH"].split(":")[0] == str(done.node.parent)
    calls = _npm_calls(tmp_path)
    assert [call["package"] for call in calls] == [f"{node_package}@^24.16.0", f"openclaw@{VERSION}"]
    assert calls[1]["path0"] == str(done.node.parent)  # OpenClaw's install scripts see Node 24 first
    assert {call["cache"] for call in calls} == {str(runtime.resolve() / ".npm-cache")}  # not ~/.npm
    assert sorted(p.name for p in runtime.iterdir()) == [".install.lock", "node24", f"openclaw-{VERSION}"]
    assert find_install(runtime, VERSION) == done


def test_a_second_install_returns_at_once_without_npm(tmp_path, fake_npm, monkeypatch) -> None:
    first = install(tmp_path / "runtime", VERSION, npm=str(fake_npm))

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    began = time.monotonic()
    assert install(tmp_path / "runtime", VERSION, npm=str(fake_npm)) == first
    assert time.monotonic() - began < 0.5
    assert len(_npm_calls(tmp_path)) == 2


def test_an_interrupted_install_is_never_taken_for_a_finished_one(tmp_path, fake_npm, monkeypatch) -> None:
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("FAKE_NPM_FAIL", "openclaw")
    with pytest.raises(InstallError, match="openclaw@.* failed .*ECONNRESET"):
        install(runtime, VERSION, npm=str(fake_npm))
    assert find_install(runtime, VERSION) is None
    assert not (runtime / f"openclaw-{VERSION}").exists()
    assert not list(runtime.glob(".staging-*"))  # the half-written copy is gone
    monkeypatch.delenv("FAKE_NPM_FAIL")
    assert install(runtime, VERSION, npm=str(fake_npm)) == find_install(runtime, VERSION)
    assert [call["package"].split("@")[0] for call in _npm_calls(tmp_path)] == [
        install_module._node_package(), "openclaw", "openclaw"]  # the finished Node part was kept


def test_a_wrong_package_is_refused(tmp_path, fake_npm, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_NPM_VERSION", "2026.1.1")
    with pytest.raises(InstallError, match="version 2026.1.1"):
        install(tmp_path / "runtime", VERSION, npm=str(fake_npm))
    assert find_install(tmp_path / "runtime", VERSION) is None


def test_find_install_ignores_half_finished_dirs(tmp_path, fake_npm) -> None:
    runtime = tmp_path / "runtime"
    done = install(runtime, VERSION, npm=str(fake_npm))
    marker = runtime / f"openclaw-{VERSION}" / ".complete"
    marker.unlink()  # files all there, but the install never said it finished
    assert find_install(runtime, VERSION) is None
    marker.write_text("{}")
    done.node.unlink()  # said it finished, but the node binary is gone
    assert find_install(runtime, VERSION) is None
    assert find_install(tmp_path / "nowhere", VERSION) is None
    assert find_install(runtime, "2099.1.1") is None


def test_leftovers_of_a_killed_install_are_cleared(tmp_path, fake_npm) -> None:
    runtime = tmp_path / "runtime"
    stale = runtime / f".staging-openclaw-{VERSION}-deadbeef" / "node_modules" / "openclaw"
    stale.mkdir(parents=True)  # what SIGKILL in the middle of npm leaves behind
    (runtime / f"openclaw-{VERSION}").mkdir()  # and a target dir without its marker
    assert find_install(runtime, VERSION) is None
    install(runtime, VERSION, npm=str(fake_npm))
    assert not list(runtime.glob(".staging-*"))
    assert find_install(runtime, VERSION) is not None


def test_missing_npm_is_explained(tmp_path) -> None:
    with pytest.raises(InstallError, match="was not found"):
        install(tmp_path / "runtime", VERSION, npm=str(tmp_path / "no-npm-here"))


def _clawfleet(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # a child process: the CLI configures logging globally, which must not leak into other tests
    base = {key: value for key, value in os.environ.items() if not key.startswith("CLAWFLEET_")}
    return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**base, "CLAWFLEET_DATA_DIR": str(tmp_path / "data"), **env})


def test_cli_installs_into_dir_then_finds_it_there(tmp_path, fake_npm) -> None:
    first = _clawfleet(tmp_path, "runtime", "install", "--dir", str(tmp_path / "elsewhere"))
    assert first.returncode == 0, first.stderr
    assert f"in {(tmp_path / 'elsewhere').resolve()}: installed in" in first.stdout
    default = _clawfleet(tmp_path, "runtime", "install")  # no --dir, no CLAWFLEET_RUNTIME_DIR: DATA_DIR/runtime
    assert f"in {(tmp_path / 'data' / 'runtime').resolve()}: installed" in default.stdout
    again = _clawfleet(tmp_path, "runtime", "install", CLAWFLEET_RUNTIME_DIR=str(tmp_path / "elsewhere"))
    assert "was already installed" in again.stdout
    assert len(_npm_calls(tmp_path)) == 4


def test_cli_failure_is_one_readable_line(tmp_path, fake_npm) -> None:
    failed = _clawfleet(tmp_path, "runtime", "install", "--dir", str(tmp_path / "rt"), FAKE_NPM_FAIL="openclaw")
    assert failed.returncode == 1
    assert failed.stderr.startswith("clawfleet: could not install OpenClaw") and "ECONNRESET" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_the_real_install_is_found_again_offline(openclaw_install, monkeypatch) -> None:
    package = json.loads((openclaw_install.package_dir / "package.json").read_text())
    assert package["version"] == openclaw_install.version
    assert package["bin"] == {"openclaw": "openclaw.mjs"}  # what argv() runs
    assert (openclaw_install.package_dir / "dist" / "index.js").is_file()
    version = subprocess.run(openclaw_install.argv("--version"), env=openclaw_install.env(),
                             capture_output=True, text=True, timeout=60)
    assert f"OpenClaw {openclaw_install.version}" in version.stdout

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    began = time.monotonic()
    assert install(openclaw_install.root, openclaw_install.version) == openclaw_install
    assert time.monotonic() - began < 0.5
