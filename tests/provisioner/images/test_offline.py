"""The offline-built OpenClaw image on a real Docker engine: the contract's settings, a hardened
container that runs OpenClaw, and a second build that does nothing.

The engine: CLAWFLEET_DOCKER_URL, else DOCKER_HOST, else Docker's default socket (`make test`
starts one with scripts/ensure-docker.sh and builds the image first, so the build here is cached).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import pytest

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from provisioner.images.errors import ImageBuildError
from provisioner.images.offline import build_offline, default_cache_dir
from provisioner.images.recipe import RECIPE, labels
from provisioner.openclaw.install import OpenClawInstall
from tests.support.docker_fixtures import debian_mirror
from tests.support.openclaw_fixtures import RUNTIME_DIR
from tests.support.services import service_missing

TAG = f"clawfleet/openclaw:{DEFAULT_OPENCLAW_VERSION}"
CACHE_DIR = default_cache_dir(RUNTIME_DIR)  # the one `clawfleet image build --offline` uses
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--tmpfs", "/home/node/.cache:uid=1000,gid=1000",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "1000:1000", "--network", "none"]


def docker(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": url}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture(scope="session")
def engine_url() -> str:
    url = os.environ.get("CLAWFLEET_DOCKER_URL") or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        answer = docker(url, "version", "--format", "{{.Server.Version}}", timeout=20)
    except FileNotFoundError:
        service_missing("the docker command is not installed (make test installs it: scripts/ensure-docker.sh)")
    except subprocess.TimeoutExpired:
        service_missing(f"the Docker engine at {url} does not answer within 20 s")
    if answer.returncode != 0:
        service_missing(f"no Docker engine answers at {url} (make test starts one: scripts/ensure-docker.sh): "
                        f"{answer.stderr.strip()}")
    return url


@pytest.fixture(scope="session")
def image(engine_url: str, openclaw_install: OpenClawInstall) -> str:
    """The image's id; built here only when `make test` did not build it first."""
    try:
        return build_offline(openclaw_install, TAG, engine_url, CACHE_DIR, mirror=debian_mirror())
    except ImageBuildError as exc:  # e.g. not root: debootstrap cannot run
        service_missing(f"the image {TAG} is not built and cannot be built here: {exc}")


def run_hardened(engine_url: str, *argv: str, entrypoint: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--entrypoint", entrypoint] if entrypoint else []
    extra += [f"--env={key}={value}" for key, value in (env or {}).items()]
    return docker(engine_url, "run", "--rm", *HARDENED, *extra, TAG, *argv)


def test_the_image_carries_the_contracts_runtime_settings(engine_url: str, image: str) -> None:
    found = json.loads(docker(engine_url, "image", "inspect", TAG).stdout)[0]
    assert found["Id"] == image
    config = found["Config"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/app/node_modules/openclaw"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert config["Cmd"] == ["node", "openclaw.mjs", "gateway", "run"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["NODE_ENV"] == "production" and env["HOME"] == "/home/node"
    assert "/usr/local/bin" in env["PATH"].split(":")
    assert set(config["ExposedPorts"]) == {"18789/tcp"}
    assert config["Labels"] == labels(DEFAULT_OPENCLAW_VERSION)
    assert found["Os"] == "linux"


def test_a_hardened_container_runs_openclaw(engine_url: str, image: str) -> None:
    done = run_hardened(engine_url, "node", "openclaw.mjs", "--version")
    assert done.returncode == 0, done.stderr
    assert DEFAULT_OPENCLAW_VERSION in done.stdout


def test_the_filesystem_is_laid_out_as_the_contract_says(engine_url: str, image: str) -> None:
    dirs = " ".join(path for path, _ in RECIPE.home_dirs)
    script = (
        "set -e; id -u; id -g; pwd; command -v node; node --version; test -x /usr/bin/tini && echo tini; "
        "test -s /etc/ssl/certs/ca-certificates.crt && echo certs; test -f dist/index.js && echo dist; "
        "grep -h '^VERSION_CODENAME=' /etc/os-release; "
        f"stat -c '%n %u:%g %a' {dirs}; "
        "touch /app/x 2>/dev/null && echo writable-root || echo read-only-root; "
        "touch /home/node/.cache/x && echo writable-cache"
    )
    done = run_hardened(engine_url, "-c", script, entrypoint="/bin/sh")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == ["1000", "1000", "/app/node_modules/openclaw", "/usr/local/bin/node"]
    assert lines[4].startswith("v24.")
    assert lines[5:9] == ["tini", "certs", "dist", "VERSION_CODENAME=bookworm"]
    assert lines[9:9 + len(RECIPE.home_dirs)] == [f"{path} 1000:1000 {mode:o}" for path, mode in RECIPE.home_dirs]
    assert lines[-2:] == ["read-only-root", "writable-cache"]


def test_the_compile_cache_is_accepted_on_a_read_only_root(engine_url: str, image: str) -> None:
    """The runtime points NODE_COMPILE_CACHE at the cache the build filled: Node takes its code from it."""
    done = run_hardened(engine_url, "node", "openclaw.mjs", "--version",
                        env={"NODE_COMPILE_CACHE": RECIPE.compile_cache, "NODE_DEBUG_NATIVE": "COMPILE_CACHE"})
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "V8 code cache for ESM file:///app/node_modules/openclaw/openclaw.mjs was accepted" in said, said[-2000:]


def test_a_second_build_is_cached(engine_url: str, image: str, openclaw_install: OpenClawInstall) -> None:
    tarballs = {path: path.stat().st_mtime_ns for path in CACHE_DIR.glob("debian-*.tar")}
    assert tarballs, f"no cached Debian tarball in {CACHE_DIR}"
    said: list[str] = []
    again = build_offline(openclaw_install, TAG, engine_url, CACHE_DIR, mirror=debian_mirror(), log=said.append)
    assert again == image
    assert {path: path.stat().st_mtime_ns for path in CACHE_DIR.glob("debian-*.tar")} == tarballs
    assert len(said) == 1 and "nothing to do" in said[0]  # no bootstrap, no import, no build


def test_a_changed_recipe_builds_again_and_drops_the_old_image(engine_url: str, image: str,
                                                               openclaw_install: OpenClawInstall,
                                                               tmp_path) -> None:
    """A small stand-in for Node and OpenClaw keeps this quick; the base is the cached tarball."""
    package = tmp_path / "node_modules" / "openclaw"
    package.mkdir(parents=True)
    # stands in for the gateway the build's warm-up starts: ready at once, gone at SIGTERM
    (package / "openclaw.mjs").write_text(
        'import http from "node:http";\n'
        'const server = http.createServer((_, response) => response.end("ok")).listen(18789, "127.0.0.1");\n'
        'process.on("SIGTERM", () => server.close(() => process.exit(0)));\n')
    small = OpenClawInstall(root=tmp_path, version="0.0.0-test", node=openclaw_install.node, package_dir=package)
    tag = f"clawfleet/openclaw-recipe-test:{os.getpid()}"
    first_recipe = dataclasses.replace(RECIPE, env=(*RECIPE.env, ("CLAWFLEET_TEST", "one")))
    second_recipe = dataclasses.replace(RECIPE, env=(*RECIPE.env, ("CLAWFLEET_TEST", "two")))
    try:
        first = build_offline(small, tag, engine_url, CACHE_DIR, recipe=first_recipe, mirror=debian_mirror())
        said: list[str] = []
        second = build_offline(small, tag, engine_url, CACHE_DIR, recipe=second_recipe, mirror=debian_mirror(),
                               log=said.append)
        assert second != first and any("building it again" in line for line in said)
        assert docker(engine_url, "image", "inspect", first).returncode != 0  # gone, not left dangling
        env = json.loads(docker(engine_url, "image", "inspect", tag).stdout)[0]["Config"]["Env"]
        assert "CLAWFLEET_TEST=two" in env
    finally:
        docker(engine_url, "image", "rm", tag)
