"""Loopback fakes made reachable from containers, without binding anything but loopback on the host.

A container cannot reach the host's 127.0.0.1, and the egress guard refuses its connections to the
host's own addresses. So `outside_world()` makes a network namespace behind a veth pair (an
address the host routes to, as it would the internet), and `relay()` listens there and carries
each connection to a server on the host's loopback. The listening socket is made by a thread that
enters the namespace: a socket stays in the namespace it was made in, and the relay itself runs
in the test's event loop. Needs root and iproute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from tests.support.services import service_missing

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str  # its own address, reachable from containers through the host's routing


@contextlib.contextmanager
def outside_world(prefix: str = "198.18.3") -> Iterator[Namespace]:
    """A namespace holding `<prefix>.2` on a veth pair whose host end is `<prefix>.1` (a /30)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        service_missing("a network namespace for containers to reach needs root and iproute2")
    tag = f"{os.getpid() % 100000}"
    name, host_end, inner_end = f"cf-outside-{tag}", f"cfo{tag}h", f"cfo{tag}n"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
        _ip("link", "set", inner_end, "netns", name)
        _ip("addr", "add", f"{prefix}.1/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", name, "addr", "add", f"{prefix}.2/30", "dev", inner_end)
        _ip("-n", name, "link", "set", inner_end, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield Namespace(name, f"{prefix}.2")
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)  # takes the veth pair with it


@contextlib.asynccontextmanager
async def relay(namespace: Namespace, loopback_port: int) -> AsyncIterator[str]:
    """`http://<namespace address>:<port>`, carried to 127.0.0.1:loopback_port."""
    listener = _listen_in(namespace)
    open_writers: set[asyncio.StreamWriter] = set()

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", loopback_port)
        except OSError:
            writer.close()
            return
        open_writers.update((writer, upstream_writer))
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        open_writers.difference_update((writer, upstream_writer))

    server = await asyncio.start_server(carry, sock=listener)
    try:
        yield f"http://{namespace.address}:{listener.getsockname()[1]}"
    finally:
        server.close()
        for writer in list(open_writers):  # long polls still open
            writer.close()
        await server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _listen_in(namespace: Namespace) -> socket.socket:
    made: list[socket.socket | BaseException] = []

    def enter_and_listen() -> None:  # this thread alone moves into the namespace, then ends
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{namespace.name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into the namespace failed")
            finally:
                os.close(fd)
            listener = socket.create_server((namespace.address, 0))
            listener.setblocking(False)
            made.append(listener)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            made.append(exc)

    thread = threading.Thread(target=enter_and_listen)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)
