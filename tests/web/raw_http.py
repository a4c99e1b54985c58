"""One HTTP/1.1 request written byte for byte on a real socket: header values that no client
library will send (bytes that are not UTF-8, say), and the answer read back as it came."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(host: str, port: int, method: str, path: str, *,
                      headers: dict[str, bytes] | None = None, body: bytes = b"",
                      host_header: bytes | None = None) -> RawAnswer:
    """`host_header`: the Host the request names, when not the address it is sent to."""
    headers = headers or {}
    named = host_header if host_header is not None else f"{host}:{port}".encode()
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + named, b"Connection: close"]
    if "Transfer-Encoding" not in headers:  # else `body` comes framed in chunks as it is
        lines.append(f"Content-Length: {len(body)}".encode())
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)  # the server closes after one answer
    finally:
        writer.close()
    return parse_answer(answer)


def parse_answer(answer: bytes) -> RawAnswer:
    head, _, rest = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    fields = {name.lower(): value for name, value in fields.items()}
    if "content-length" in fields:
        rest = rest[:int(fields["content-length"])]
    return RawAnswer(int(status_line.split()[1]), fields, rest)
