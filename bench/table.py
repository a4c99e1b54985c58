"""How every benchmark reports: an aligned table on stdout, the full result as JSON."""

from __future__ import annotations

import json
from pathlib import Path


def print_table(rows: list[tuple[str, str]], heading: str | None = None) -> None:
    width = max(len(name) for name, _ in rows)
    print()
    if heading:
        print(heading)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def write_json(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")
