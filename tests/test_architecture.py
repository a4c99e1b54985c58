"""The layers import one way (see README: Architecture)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("db", "provisioner", "billing", "bot", "web", "clawfleet")
# what each layer may import from the project; clawfleet.settings is a leaf every layer may read
ALLOWED = {
    "db": {"db"},
    "provisioner": {"db", "provisioner"},
    "billing": {"db", "provisioner", "billing"},
    "bot": {"db", "provisioner", "billing", "bot"},
    "web": {"db", "provisioner", "billing", "web"},
    "clawfleet": set(LAYERS),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offences = []
    for path in (ROOT / layer).rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in LAYERS or top in ALLOWED[layer]:
                continue
            if name == "clawfleet.settings" or (name == "clawfleet" and layer != "db"):
                continue  # settings and the version are leaves
            offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []
