"""The production recipe: `docker build` of images/openclaw, which needs a registry (node image, npm)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from provisioner.images.dockercli import docker_env
from provisioner.images.errors import ImageBuildError
from provisioner.images.recipe import IMAGE_CONTEXT as CONTEXT
from provisioner.images.recipe import recipe_hash


def build_with_registry(version: str, tag: str, docker_host: str | None, context: Path = CONTEXT) -> None:
    """Build `tag` from the Dockerfile, docker's progress going to this process's own output."""
    if not (context / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in {context}: run this from a ClawFleet source checkout, "
                              "or use --offline")
    argv = ["docker", "build", "--tag", tag, "--build-arg", f"OPENCLAW_VERSION={version}",
            "--build-arg", f"CLAWFLEET_RECIPE={recipe_hash()}", str(context)]
    try:
        code = subprocess.run(argv, env=docker_env(docker_host), stdin=subprocess.DEVNULL).returncode
    except FileNotFoundError:
        raise ImageBuildError("the `docker` command was not found: install docker.io") from None
    if code != 0:
        raise ImageBuildError(f"docker build of {context} failed (exit {code}); its output is above. "
                              "Without a reachable registry, use --offline")
