"""Real servers for the real-time tests: apps made by `create_app` with their own engine on
the test database (so they see committed rows only) and their own Redis clients, served by
uvicorn on free ports in the test's event loop. Two of them on one Redis are two API
instances behind a load balancer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from marketplace.app import create_app
from marketplace.settings import Settings
from tests.support.jobs import RecordingSender


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Instance:
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@asynccontextmanager
async def serve(settings: Settings, **overrides: Any) -> AsyncIterator[Instance]:
    database = replace(settings.database, pool_size=5, max_overflow=5)
    app = create_app(
        settings.with_overrides(database=database),
        job_sender=RecordingSender(),
        skip_logging_setup=True,
        **overrides,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield Instance(port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def two_instances(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[Instance, Instance]]:
    async with serve(settings, **overrides) as first, serve(settings, **overrides) as second:
        yield first, second


class RawWebSocket:
    """A WebSocket client that reads nothing until told: the TCP window closes and the server
    feels it (client libraries keep draining the socket into their own buffers)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, instance: Instance, path: str) -> RawWebSocket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", instance.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{instance.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readuntil(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(status.decode(errors="replace"))
        return cls(reader, writer)

    async def read_until_close(self) -> tuple[int, int, str]:
        """Read frames until the close frame: (messages read, close code, close reason)."""
        messages = 0
        while True:
            head = await self._reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self._reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self._reader.readexactly(8), "big")
            payload = await self._reader.readexactly(length)
            if opcode == 0x8:
                return messages, int.from_bytes(payload[:2], "big"), payload[2:].decode()
            if opcode in (0x1, 0x2):
                messages += 1

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
