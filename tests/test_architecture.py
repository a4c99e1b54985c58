"""The layers import one way (see README: Architecture), only the composition root wires them,
and every package ships."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from tests.support.platform_image import INPUTS

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("metrics", "db", "accounts", "provisioner", "billing", "model_gateway", "admin", "bot", "web", "clawfleet")
# what each layer may import from the project: nothing imports clawfleet, the composition root
# metrics is below everything: every layer records into it, it imports none of them
ALLOWED = {
    "metrics": {"metrics"},
    "db": {"metrics", "db"},
    "accounts": {"metrics", "db", "accounts"},
    "provisioner": {"metrics", "db", "provisioner"},
    "billing": {"metrics", "db", "accounts", "provisioner", "billing"},
    "model_gateway": {"metrics", "db", "provisioner", "model_gateway"},
    "admin": {"metrics", "db", "accounts", "provisioner", "billing", "admin"},
    "bot": {"metrics", "db", "accounts", "provisioner", "billing", "model_gateway", "admin", "bot"},
    "web": {"metrics", "db", "accounts", "provisioner", "billing", "model_gateway", "admin", "web"},
    "clawfleet": set(LAYERS),
}
# what only the composition root calls: the resources it opens and the services it wires
WIRING = {"create_engine", "create_session_factory", "load_keyring", "ClientSession", "Docker", "Accounts",
          "Invites", "LoginLinks", "AccessPolicy", "InstanceManager", "InstanceService", "Reconciler",
          "ProvisioningBot", "create_app"}
ACCOUNT_CODE = re.compile(r"\b(password_hash|ApiToken|Invites?|LoginLinks?|argon2)\b")
NOT_SHIPPED = {"tests", "bench"}  # packages of the repository that the image leaves out (.dockerignore)


def _sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offences = [f"{path.relative_to(ROOT)} imports {name}" for path in _sources(layer) for name in _imports(path)
                if name.split(".")[0] in LAYERS and name.split(".")[0] not in ALLOWED[layer]]
    assert offences == []


def test_only_the_composition_root_opens_and_wires() -> None:
    offences = [f"{path.relative_to(ROOT)} calls {name}" for layer in LAYERS if layer != "clawfleet"
                for path in _sources(layer) for name in sorted(_calls(path) & WIRING)]
    assert offences == []


def test_the_provisioner_holds_no_account_code() -> None:
    """Passwords, tokens, invites and login links are accounts/'s; the provisioner only asks an
    Admission whether a user may create an instance."""
    offences = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in _sources("provisioner")
                for number, line in enumerate(path.read_text().splitlines(), start=1) if ACCOUNT_CODE.search(line)]
    assert offences == []


def test_every_package_has_a_layer_and_ships() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - NOT_SHIPPED
    assert packages == set(LAYERS)
    assert NOT_SHIPPED <= set((ROOT / ".dockerignore").read_text().split())

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = set(pyproject["tool"]["setuptools"]["packages"]["find"]["include"])
    assert {f"{package}*" for package in packages} <= included
    copied = {source for source, target in re.findall(r"^COPY (\S+) \./(\S+)$", (ROOT / "Dockerfile").read_text(),
                                                      re.MULTILINE) if source == target}
    assert packages <= copied
    assert packages <= set(INPUTS)  # the compose test rebuilds the platform's image when any of them changes
