"""The OpenClaw image's contract, declared once as data.

Two recipes build the image: images/openclaw/Dockerfile (from the registry's node image, for
production) and offline.py (debootstrap plus the Node 24 and OpenClaw installed on this machine,
where no registry is reachable). Both must give the docker runtime the same image: uid 1000, a
read-only root with tmpfs at /tmp and the cache, state in /home/node/.openclaw, auth-profile keys
in /home/node/.config/openclaw. tests/test_image_recipe.py checks the Dockerfile against this.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from provisioner.images.errors import ImageBuildError

TITLE_LABEL = "org.opencontainers.image.title"
VERSION_LABEL = "org.opencontainers.image.version"
RECIPE_LABEL = "clawfleet.recipe"  # an image is reused only while this matches the recipe's hash
COMPILE_CACHE_LABEL = "clawfleet.compile-cache"  # where the image's filled compile cache is, for the runtime
IMAGE_CONTEXT = Path(__file__).resolve().parents[2] / "images" / "openclaw"  # in the source tree only
WARM_SCRIPT, WARM_SCRIPT_DIR = "warm-compile-cache.mjs", "/usr/local/lib/clawfleet"


@dataclass(frozen=True)
class Recipe:
    title: str
    suite: str  # the Debian release both recipes start from
    packages: tuple[str, ...]  # beyond the base: tini as PID 1 (reaps OpenClaw's helpers), CA certificates
    user_name: str
    uid: int
    gid: int
    home: str
    shell: str
    home_dirs: tuple[tuple[str, int], ...]  # (path, mode), all owned by uid:gid; the runtime mounts over some
    node: str  # the Node 24 binary
    app_dir: str  # holds node_modules: OpenClaw's dependencies resolve as its siblings
    compile_cache: str  # Node's compile cache, filled at build (warm-compile-cache.mjs), read at every start
    workdir: str  # OpenClaw's package directory (openclaw.mjs, dist/index.js), as upstream's fleet expects
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int  # the gateway's port inside the container

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"  # numeric, so the engine needs no /etc/passwd lookup


RECIPE = Recipe(
    title="clawfleet-openclaw",
    suite="bookworm",
    packages=("tini", "ca-certificates"),
    user_name="node",
    uid=1000,
    gid=1000,
    home="/home/node",
    shell="/bin/bash",
    home_dirs=(
        ("/home/node", 0o755),
        ("/home/node/.cache", 0o755),
        ("/home/node/.config", 0o755),
        ("/home/node/.openclaw", 0o700),
        ("/home/node/.config/openclaw", 0o700),
    ),
    node="/usr/local/bin/node",
    app_dir="/app",
    compile_cache="/app/compile-cache",
    workdir="/app/node_modules/openclaw",
    entrypoint=("/usr/bin/tini", "--"),
    cmd=("node", "openclaw.mjs", "gateway", "run"),
    env=(
        ("NODE_ENV", "production"),
        ("HOME", "/home/node"),
        # an imported root filesystem has no ENV at all: say where `node` is rather than rely on defaults
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ),
    port=18789,
)


def recipe_hash(recipe: Recipe = RECIPE) -> str:
    """Short and stable: changes whenever anything the image is made of changes, the warm-up
    script included."""
    digest = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    digest.update(runtime_instructions("", recipe_label="", recipe=recipe).encode())  # the label set, say
    digest.update(warm_instructions(recipe).encode() + warm_script().read_bytes())
    return digest.hexdigest()[:12]


def warm_script() -> Path:
    """The warm-up script, beside the production Dockerfile (both recipes copy it into the image)."""
    path = IMAGE_CONTEXT / WARM_SCRIPT
    if not path.is_file():
        raise ImageBuildError(f"{path} is missing: images are built from a ClawFleet source checkout")
    return path


def labels(version: str, recipe_label: str | None = None, recipe: Recipe = RECIPE) -> dict[str, str]:
    return {
        TITLE_LABEL: recipe.title,
        VERSION_LABEL: version,
        RECIPE_LABEL: recipe_label if recipe_label is not None else recipe_hash(recipe),
        COMPILE_CACHE_LABEL: recipe.compile_cache,
    }


def runtime_instructions(version: str, recipe_label: str | None = None, recipe: Recipe = RECIPE) -> str:
    """The Dockerfile lines that set the runtime settings (no RUN, nothing that needs a network).

    version and recipe_label may be build-arg references such as ${OPENCLAW_VERSION}.
    """
    lines = [
        f"USER {recipe.user}",
        f"WORKDIR {recipe.workdir}",
        "ENV " + " ".join(f"{key}={_quoted(value)}" for key, value in recipe.env),
        f"EXPOSE {recipe.port}",
        "LABEL " + " ".join(f"{key}={_quoted(value)}" for key, value in labels(version, recipe_label, recipe).items()),
        f"ENTRYPOINT {json.dumps(list(recipe.entrypoint))}",
        f"CMD {json.dumps(list(recipe.cmd))}",
    ]
    return "\n".join(lines) + "\n"


def warm_instructions(recipe: Recipe = RECIPE) -> str:
    """The Dockerfile lines, after the runtime settings, that fill the compile cache as the
    gateway's user (images/openclaw/warm-compile-cache.mjs: one gateway started and stopped)."""
    return (f"COPY {WARM_SCRIPT} {WARM_SCRIPT_DIR}/{WARM_SCRIPT}\n"
            f"RUN {json.dumps(['node', f'{WARM_SCRIPT_DIR}/{WARM_SCRIPT}', recipe.compile_cache])}\n")


def _quoted(value: str) -> str:
    return json.dumps(value) if any(ch in value for ch in ' "\'\\') else value
