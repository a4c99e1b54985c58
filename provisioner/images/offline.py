"""Build the OpenClaw image with no registry: debootstrap's Debian, plus this machine's Node 24 and
OpenClaw, imported into the engine, then given the recipe's runtime settings.

Cached twice: the Debian tarball per machine (rootfs.py), and the image itself: an image under the
tag whose labels carry this recipe's hash and the same OpenClaw version is returned untouched.
"""

from __future__ import annotations

import fcntl
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.images.assemble import write_rootfs
from provisioner.images.dockercli import DockerStream, docker
from provisioner.images.errors import ImageBuildError
from provisioner.images.recipe import (
    RECIPE,
    RECIPE_LABEL,
    VERSION_LABEL,
    WARM_SCRIPT,
    Recipe,
    recipe_hash,
    runtime_instructions,
    warm_instructions,
    warm_script,
)
from provisioner.images.rootfs import base_tarball
from provisioner.openclaw.install import OpenClawInstall

CACHE_SUBDIR = "image-cache"  # under the runtime dir: one per machine, like the OpenClaw install


def default_cache_dir(runtime_dir: Path) -> Path:
    return runtime_dir / CACHE_SUBDIR


def build_offline(install: OpenClawInstall, tag: str, docker_host: str | None, cache_dir: Path, *,
                  recipe: Recipe = RECIPE, mirror: str | None = None,
                  log: Callable[[str], None] = lambda _: None) -> str:
    """Make sure `tag` is this recipe's image of `install`; returns the image id. A Debian base not
    cached yet comes from `mirror` (None: the one the host's apt sources name)."""
    wanted = {RECIPE_LABEL: recipe_hash(recipe), VERSION_LABEL: install.version}
    with _exclusive(cache_dir, ".build.lock"):  # a second build waits, then finds the image made
        found = image_labels(tag, docker_host)
        if found is not None and all(found.get(key) == value for key, value in wanted.items()):
            log(f"{tag} is already built (recipe {wanted[RECIPE_LABEL]}): nothing to do")
            return image_id(tag, docker_host)
        previous = image_id(tag, docker_host) if found is not None else None
        if found is not None:
            log(f"{tag} exists but was built from recipe {found.get(RECIPE_LABEL)} of OpenClaw "
                f"{found.get(VERSION_LABEL)}: building it again")
        base = base_tarball(cache_dir, recipe.suite, recipe.packages, mirror=mirror, log=log)
        rootfs = f"clawfleet/openclaw-rootfs:{install.version}-{wanted[RECIPE_LABEL]}"
        log(f"importing {base.name} with Node 24 and OpenClaw {install.version} as {rootfs}")
        _import(rootfs, base, install, recipe, docker_host)
        log(f"applying the runtime settings as {tag}, and filling Node's compile cache (one gateway start)")
        dockerfile = f"FROM {rootfs}\n" + runtime_instructions(install.version, recipe=recipe) + warm_instructions(recipe)
        _build(tag, dockerfile, docker_host)
        docker(["image", "rm", rootfs], docker_host, check=False)  # only untags: the image's lower layer
        built = image_id(tag, docker_host)
        if found is not None and previous != built:
            # the tag moved on: drop the old image unless a container still runs from it
            docker(["image", "rm", previous], docker_host, check=False)
        return built


def image_labels(tag: str, docker_host: str | None) -> dict[str, str] | None:
    """The labels of the image under `tag`, or None when there is no such image."""
    done = docker(["image", "inspect", "--format", "{{json .Config.Labels}}", tag], docker_host, check=False)
    if done.returncode != 0:
        if "no such image" in done.stderr.lower():
            return None
        raise ImageBuildError(f"cannot ask the Docker engine about {tag}: {done.stderr.strip()}")
    return json.loads(done.stdout) or {}


def image_id(tag: str, docker_host: str | None) -> str:
    return docker(["image", "inspect", "--format", "{{.Id}}", tag], docker_host).stdout.strip()


def _build(tag: str, dockerfile: str, docker_host: str | None) -> None:
    """`docker build` of a context holding the Dockerfile and the warm-up script. The legacy
    builder uses the local base image as is and never asks a registry about it; the warm-up's
    gateway runs with no network at all."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), (WARM_SCRIPT, warm_script().read_bytes())):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    stream = DockerStream(["build", "--quiet", "--network", "none", "--tag", tag, "-"], docker_host,
                          what=f"docker build of {tag}", DOCKER_BUILDKIT="0")
    try:
        stream.stdin.write(context.getvalue())
    except BrokenPipeError:
        raise ImageBuildError(f"docker build of {tag} stopped reading: {stream.abort()}") from None
    stream.finish()


def _import(rootfs: str, base: Path, install: OpenClawInstall, recipe: Recipe, docker_host: str | None) -> None:
    stream = DockerStream(["import", "-", rootfs], docker_host, what=f"docker import of {rootfs}")
    try:
        write_rootfs(stream.stdin, base, install, recipe)
    except BrokenPipeError:
        raise ImageBuildError(f"docker import of {rootfs} stopped reading: {stream.abort()}") from None
    except BaseException:
        stream.abort()
        raise
    stream.finish()


@contextmanager
def _exclusive(cache_dir: Path, name: str) -> Iterator[None]:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / name, "a")
    except OSError as exc:
        raise ImageBuildError(f"cannot use the image cache {cache_dir}: {exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
