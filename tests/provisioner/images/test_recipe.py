"""Both recipes of the OpenClaw image declare the same runtime settings: the production Dockerfile
(images/openclaw) and the offline build, which renders them from provisioner/images/recipe.py."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from provisioner.images.recipe import (
    RECIPE,
    labels,
    recipe_hash,
    runtime_instructions,
    warm_instructions,
    warm_script,
)

DOCKERFILE = Path(__file__).resolve().parents[3] / "images" / "openclaw" / "Dockerfile"
RUNTIME_KEYWORDS = {"USER", "WORKDIR", "ENTRYPOINT", "CMD", "ENV", "EXPOSE", "LABEL"}
# the production Dockerfile's build args, as the offline recipe's values appear there
VERSION_ARG, RECIPE_ARG = "${OPENCLAW_VERSION}", "${CLAWFLEET_RECIPE}"


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def runtime_settings(text: str) -> dict:
    """What the final stage sets for containers: a later line wins, ENV and LABEL accumulate."""
    settings: dict = {"ENV": {}, "LABEL": {}, "EXPOSE": []}
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            settings = {"ENV": {}, "LABEL": {}, "EXPOSE": []}  # a new stage starts from nothing
        elif keyword in ("ENV", "LABEL"):
            for pair in shlex.split(rest):
                key, sep, value = pair.partition("=")
                assert sep, f"{keyword} {rest}: use the KEY=value form"
                settings[keyword][key] = value
        elif keyword in ("ENTRYPOINT", "CMD"):
            settings[keyword] = json.loads(rest)  # the exec form: no shell between tini and node
        elif keyword == "EXPOSE":
            settings[keyword] += rest.split()
        elif keyword in ("USER", "WORKDIR"):
            settings[keyword] = rest
    return settings


def expected(version: str, recipe_label: str) -> dict:
    return {
        "USER": "1000:1000",
        "WORKDIR": "/app/node_modules/openclaw",
        "ENTRYPOINT": ["/usr/bin/tini", "--"],
        "CMD": ["node", "openclaw.mjs", "gateway", "run"],
        "ENV": dict(RECIPE.env),
        "EXPOSE": ["18789"],
        "LABEL": {"org.opencontainers.image.title": "clawfleet-openclaw",
                  "org.opencontainers.image.version": version, "clawfleet.recipe": recipe_label,
                  "clawfleet.compile-cache": RECIPE.compile_cache},
    }


def test_the_recipe_is_the_contract() -> None:
    rendered = runtime_instructions(VERSION_ARG, RECIPE_ARG)
    assert runtime_settings("FROM x\n" + rendered) == expected(VERSION_ARG, RECIPE_ARG)
    env = dict(RECIPE.env)
    assert env["NODE_ENV"] == "production" and env["HOME"] == RECIPE.home == "/home/node"
    node_dir, node_name = RECIPE.node.rsplit("/", 1)
    assert RECIPE.cmd[0] == node_name and node_dir in env["PATH"].split(":")  # CMD finds Node 24
    assert RECIPE.workdir == f"{RECIPE.app_dir}/node_modules/openclaw"
    owned = {path for path, _ in RECIPE.home_dirs}
    assert {"/home/node", "/home/node/.openclaw", "/home/node/.config/openclaw", "/home/node/.cache"} <= owned


def test_the_production_dockerfile_declares_the_same_runtime_settings() -> None:
    production = runtime_settings(DOCKERFILE.read_text())
    offline = runtime_settings("FROM x\n" + runtime_instructions(VERSION_ARG, RECIPE_ARG))
    assert production == offline == expected(VERSION_ARG, RECIPE_ARG)


def test_the_offline_settings_need_nothing_but_metadata() -> None:
    rendered = runtime_instructions(DEFAULT_OPENCLAW_VERSION)
    assert {keyword for keyword, _ in instructions(rendered)} == RUNTIME_KEYWORDS  # no RUN, COPY, ADD
    assert runtime_settings("FROM x\n" + rendered)["LABEL"] == labels(DEFAULT_OPENCLAW_VERSION)


def test_the_production_dockerfile_builds_what_the_offline_recipe_builds() -> None:
    steps = instructions(DOCKERFILE.read_text())
    assert steps[0] == ("FROM", f"node:24-{RECIPE.suite}-slim")  # Node 24 at /usr/local/bin/node
    args = dict(rest.partition("=")[::2] for keyword, rest in steps if keyword == "ARG")
    assert args["OPENCLAW_VERSION"] == DEFAULT_OPENCLAW_VERSION
    assert "CLAWFLEET_RECIPE" in args
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    install = re.search(r"apt-get install ([^&]+)", runs)
    assert install and set(RECIPE.packages) <= set(install.group(1).split())
    assert f"npm install --prefix {RECIPE.app_dir} " in runs and '"openclaw@${OPENCLAW_VERSION}"' in runs
    for path, mode in RECIPE.home_dirs:  # the same owners and modes as the offline tarball gives them
        made = re.search(rf"install -d -m 0?{mode:o} -o {RECIPE.uid} -g {RECIPE.gid} ([^&]*)", runs)
        assert made and path in made.group(1).split(), f"{path} is not made with mode {mode:o}"


def test_both_recipes_fill_the_compile_cache_the_same_way() -> None:
    production = DOCKERFILE.read_text()
    warm = warm_instructions()
    assert warm in production  # the same COPY and RUN, after the runtime settings (as uid 1000)
    assert production.index(warm) > production.index("USER 1000:1000")
    assert warm_script().parent == DOCKERFILE.parent  # COPY finds it in the production build's context
    made = re.search(r"install -d -m 0?755 -o 1000 -g 1000 ([^&]*)", production)
    assert made and RECIPE.compile_cache in made.group(1).split()  # writable by the warm-up, owned as offline


def test_the_recipe_hash_follows_the_recipe() -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", recipe_hash())
    assert recipe_hash() == recipe_hash(dataclasses.replace(RECIPE))
    assert recipe_hash(dataclasses.replace(RECIPE, packages=(*RECIPE.packages, "curl"))) != recipe_hash()
    assert recipe_hash(dataclasses.replace(RECIPE, uid=1001)) != recipe_hash()
