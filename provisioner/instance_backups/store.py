"""Where encrypted instance backups are kept on the platform's own disk:
DATA_DIR/instance-backups/<instance id>/<backup id>.cfib, directories 0700 and files 0600.
Written to a temporary name and renamed, so a file under its final name is always whole."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from db.private_files import open_private, private_dir

READ_BYTES = 1024 * 1024
SUFFIX = ".cfib"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, instance_id: uuid.UUID, backup_id: uuid.UUID) -> Path:
        return self.root / str(instance_id) / f"{backup_id}{SUFFIX}"

    async def save(self, instance_id: uuid.UUID, backup_id: uuid.UUID, sealed: AsyncIterator[bytes]) -> Path:
        final = self.path(instance_id, backup_id)
        private_dir(final.parent)
        partial = final.with_suffix(".partial")
        fd = open_private(partial, os.O_WRONLY | os.O_TRUNC)
        try:
            async for chunk in sealed:
                await asyncio.to_thread(os.write, fd, chunk)
            await asyncio.to_thread(os.fsync, fd)
        except BaseException:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        partial.rename(final)
        return final

    async def read(self, path: Path) -> AsyncIterator[bytes]:
        with open(path, "rb") as file:  # noqa: ASYNC230 (each read below runs in a thread)
            while chunk := await asyncio.to_thread(file.read, READ_BYTES):
                yield chunk

    def holds(self, path: str | None) -> bool:
        return path is not None and Path(path).is_file()

    async def delete(self, path: str | None) -> None:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(Path(path).unlink)

    async def delete_instance(self, instance_id: uuid.UUID) -> None:
        """Every backup file of an instance (its rows go with its row)."""
        directory = self.root / str(instance_id)
        for path in directory.glob(f"*{SUFFIX}") if directory.is_dir() else ():
            await self.delete(str(path))
        with contextlib.suppress(OSError):
            directory.rmdir()
