"""A lean HTTP/1.1 client for load benchmarks that share the machine with the server they load.

A general-purpose client (httpx) spends most of a millisecond of CPU on each request: on two cores
shared with the server under test, the client, not the server, sets the ceiling. This one keeps a
keep-alive connection per simulated user, writes each request by hand and parses the reply with the
least work (status line, headers, a body by Content-Length or chunked). No cookies, no redirects
followed, no TLS: what a load test of a local server needs, and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ["Connection", "Reply"]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes


class Connection:
    """One keep-alive connection to ``host:port``, reopened when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"{host}:{port}".encode()

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post_form(self, path: str, fields: dict[str, str]) -> Reply:
        body = urlencode(fields).encode()
        return await self.request("POST", path, body, b"application/x-www-form-urlencoded")

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: bytes | None = None
    ) -> Reply:
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), self._host_header)
        if body or method != "GET":
            head += b"Content-Length: %d\r\n" % len(body)
        if content_type:
            head += b"Content-Type: " + content_type + b"\r\n"
        return await asyncio.wait_for(self._exchange(head + b"\r\n" + body), self.timeout)

    async def _exchange(self, message: bytes) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(message)
            reply = await _read_reply(self._reader)
        except BaseException:
            await self.close()
            raise
        if reply.headers.get("connection", "").lower() == "close":
            await self.close()
        return reply

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = b""  # 1xx, 204, 304, or a reply without a body
    return Reply(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected: the empty line
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
