"""Gateway ports for runtimes that publish on the host: each instance keeps its port across
restarts (remembered on its row); a new one gets the lowest port nobody holds."""

from __future__ import annotations

import asyncio
import socket
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Instance

DEFAULT_RANGE = range(20000, 30000)


def can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortAllocator:
    def __init__(self, ports: range = DEFAULT_RANGE) -> None:
        self.ports = ports
        self._lock = asyncio.Lock()  # two deploys in this process never pick the same port

    async def assign(self, session: AsyncSession, instance_id: uuid.UUID) -> int:
        """The instance's port (its old one while free), written to its row and committed."""
        async with self._lock:
            instance = await session.get(Instance, instance_id)
            rows = await session.execute(select(Instance.port).where(Instance.port.is_not(None), Instance.id != instance_id))
            taken = {port for (port,) in rows}
            if instance.port is not None and instance.port not in taken and can_bind(instance.port):
                return instance.port
            for port in self.ports:
                if port not in taken and can_bind(port):
                    instance.port = port
                    await session.commit()
                    return port
        raise RuntimeError(f"no free port left in {self.ports.start}-{self.ports.stop - 1}")
