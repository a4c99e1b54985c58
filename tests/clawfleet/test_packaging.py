"""What `pip install .` in the platform's image gets (the Dockerfile copies the packages alone,
with no git history or egg-info for setuptools to guess from): every file the code reads at run
time, not only the Python modules: the pages' templates and assets, the migrations."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

RUN_TIME_FILES = ("web/templates", "web/static", "db/migrations")


def _copied_by_the_dockerfile(repo_root: Path) -> list[str]:
    return re.findall(r"^COPY (\S+) \./", (repo_root / "Dockerfile").read_text(), flags=re.MULTILINE)


def test_the_wheel_holds_every_template_asset_and_migration(repo_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "app"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *_copied_by_the_dockerfile(repo_root)):
        if (repo_root / name).is_dir():
            shutil.copytree(repo_root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(repo_root / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("clawfleet-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    wanted = {str(path.relative_to(repo_root)) for folder in RUN_TIME_FILES for path in (repo_root / folder).rglob("*")
              if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")}
    assert wanted and not wanted - packaged, sorted(wanted - packaged)
