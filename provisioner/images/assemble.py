"""The image's whole root filesystem as one tar stream: the Debian base, plus the `node` user,
Node 24 and OpenClaw's node_modules tree, as the recipe lays them out.

Streamed straight into `docker import`: nothing is unpacked or copied on disk, the base's device
nodes and owners pass through untouched, and no root is needed for this step.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import IO

from provisioner.images.errors import ImageBuildError
from provisioner.images.recipe import Recipe
from provisioner.openclaw.install import OpenClawInstall


def write_rootfs(out: IO[bytes], base_tar: Path, install: OpenClawInstall, recipe: Recipe) -> None:
    accounts = _account_lines(recipe)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        with tarfile.open(base_tar, mode="r|") as base:
            for member in base:
                name = _normal(member.name)
                if name in accounts and member.isfile():
                    _add_account(tar, member, base.extractfile(member), accounts.pop(name))
                else:
                    tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        if accounts:
            raise ImageBuildError(f"the base root filesystem has no {', '.join(sorted(accounts))}")
        _add_dir(tar, recipe.app_dir, 0o755, 0, 0)
        tar.add(install.package_dir.parent, arcname=_arcname(f"{recipe.app_dir}/node_modules"), filter=_root_owned)
        tar.add(install.node.resolve(), arcname=_arcname(recipe.node), filter=_root_owned)
        _add_dir(tar, recipe.compile_cache, 0o755, recipe.uid, recipe.gid)  # filled by the build's warm-up
        for path, mode in recipe.home_dirs:  # parents come first in the recipe
            _add_dir(tar, path, mode, recipe.uid, recipe.gid)


def _account_lines(recipe: Recipe) -> dict[str, str]:
    """The line each account file gains for the recipe's user, as Debian's useradd would write it."""
    name, uid, gid = recipe.user_name, recipe.uid, recipe.gid
    return {
        "etc/passwd": f"{name}:x:{uid}:{gid}::{recipe.home}:{recipe.shell}\n",
        "etc/group": f"{name}:x:{gid}:\n",
        "etc/shadow": f"{name}:*:19000:0:99999:7:::\n",  # no password: nobody logs in as node
        "etc/gshadow": f"{name}:!::\n",
    }


def _add_account(tar: tarfile.TarFile, member: tarfile.TarInfo, content: IO[bytes] | None, line: str) -> None:
    text = content.read().decode() if content else ""
    new = line.split(":")
    by_id = member.name.endswith(("passwd", "group"))  # their third field is the numeric id
    for entry in text.splitlines():
        old = entry.split(":")
        if old[0] == new[0] or (by_id and old[2:3] == new[2:3]):
            raise ImageBuildError(f"the base's {_normal(member.name)} already has {entry!r}; "
                                  f"it cannot take {new[0]} with id {new[2]}")
    data = (text if not text or text.endswith("\n") else text + "\n") + line
    member.size = len(data.encode())
    tar.addfile(member, io.BytesIO(data.encode()))


def _add_dir(tar: tarfile.TarFile, path: str, mode: int, uid: int, gid: int) -> None:
    info = tarfile.TarInfo(_arcname(path))
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
    info.mtime = int(time.time())
    info.uname = info.gname = "root" if uid == 0 else ""
    tar.addfile(info)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files come from the platform user's install: in the image root owns them, nobody else writes."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode &= ~0o022
    return info


def _normal(name: str) -> str:
    return name[2:] if name.startswith("./") else name.lstrip("/")


def _arcname(path: str) -> str:
    return "./" + path.strip("/")  # the base tarball's own style (tar -C DIR -c .)
