"""The platform's own image (the top-level Dockerfile), built here where no registry is reachable,
for the test of the compose deployment: the platform in a container, driving the engine.

The Dockerfile is built as it is, with two build arguments that production leaves at their
defaults: BASE, a Debian root filesystem from debootstrap with Python 3.11 (what python:3.11-slim
would give), and pip pointed at a directory of wheels, downloaded from PyPI on the host and
served to the build over the engine's default bridge. The image is tagged with a hash of
everything that goes into it: an unchanged tree reuses it, a changed one builds again and drops
the older test images.
"""

from __future__ import annotations

import hashlib
import http.server
import ipaddress
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from provisioner.images.dockercli import DockerStream, docker
from provisioner.images.rootfs import base_tarball

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "clawfleet/platform"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# what the Dockerfile copies into the image (its COPY lines), and the Dockerfile itself
INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "clawfleet", "db", "accounts", "web",
          "provisioner", "bot", "billing", "model_gateway",
          "metrics", "admin")


def platform_image(docker_host: str | None, cache_dir: Path, mirror: str | None = None, log=print) -> str:
    """The tag of the platform's image for this source tree, built when missing; its Debian base
    from `mirror` (None: the one the host's apt sources name)."""
    tag = f"{REPOSITORY}:test-{_tree_hash()}"
    if docker(["image", "inspect", tag], docker_host, check=False).returncode == 0:
        return tag
    base = debian_image(docker_host, cache_dir, "clawfleet/python-base", BASE_PACKAGES, mirror, log)
    wheels = _wheels(cache_dir / "platform-wheels", log)
    address = _bridge_gateway(docker_host)
    with _served(wheels, address) as index_url:
        log(f"building {tag} from the Dockerfile over {base}")
        arguments = {"BASE": base, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": index_url, "PIP_TRUSTED_HOST": address}
        docker(["build", "--quiet", "--force-rm", "--tag", tag, *(f"--build-arg={key}={value}" for key, value in arguments.items()),
                str(ROOT)], docker_host, DOCKER_BUILDKIT="0")
    for old in docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY], docker_host).stdout.split():
        if old.startswith(f"{REPOSITORY}:test-") and old != tag:
            docker(["image", "rm", old], docker_host, check=False)
    return tag


def _tree_hash() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def debian_image(docker_host: str | None, cache_dir: Path, repository: str, packages: tuple[str, ...],
                 mirror: str | None, log) -> str:
    """A Debian bookworm minbase with `packages` as an image of `repository`, imported once
    (tagged by the root filesystem's own hash): what `FROM debian:bookworm-slim` plus an
    apt-get install of them would give."""
    tarball = base_tarball(cache_dir, "bookworm", packages, mirror=mirror, log=log)
    tag = f"{repository}:{tarball.stem.rsplit('-', 1)[-1]}"
    if docker(["image", "inspect", tag], docker_host, check=False).returncode != 0:
        log(f"importing {tarball.name} as {tag}")
        stream = DockerStream(["import", "--change", 'ENV PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:'
                               '/sbin:/bin"', str(tarball), tag], docker_host, what=f"docker import of {tag}")
        stream.finish()
    return tag


def _wheels(directory: Path, log) -> Path:
    """Every wheel `pip install .` needs in the image, the build backend included."""
    directory.mkdir(parents=True, exist_ok=True)
    build_requires = _build_requires()
    log(f"downloading the platform's wheels into {directory}")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                           "--dest", str(directory), str(ROOT), *build_requires],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"pip download failed: {done.stderr.strip()[-2000:]}")
    return directory


def _build_requires() -> list[str]:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as file:
        return list(tomllib.load(file)["build-system"]["requires"])


def _bridge_gateway(docker_host: str | None) -> str:
    """The host's address on the engine's default bridge, where build containers reach it."""
    [config] = json.loads(docker(["network", "inspect", "bridge"], docker_host).stdout)[0]["IPAM"]["Config"]
    # the default bridge often leaves Gateway out: it is then the subnet's first address
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])


@contextmanager
def _served(directory: Path, address: str) -> Iterator[str]:
    """A plain directory listing over HTTP: what pip's --find-links reads."""
    handler = partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((address, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass
