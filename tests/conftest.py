"""Shared fixtures: a lowserve (or aiohttp) server on a loopback port, and raw-socket clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lowserve import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Served:
    """A running server: its port, its Server object and its runner."""

    def __init__(self, runner: web.ServerRunner, site: web.TCPSite, server: web.Server) -> None:
        self.runner = runner
        self.site = site
        self.server = server

    @property
    def port(self) -> int:
        return self.site.port


class MemoryTransport:
    """Enough of a transport to run a connection in memory: what was written, and
    reading's pauses."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.paused = False
        self.pauses = 0

    def write(self, data: bytes) -> None:
        self.out.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def hello(request: web.BaseRequest) -> web.Response:
    """A handler answering ``OK``."""
    return web.Response(text="OK")


async def echo(request: web.BaseRequest) -> web.Response:
    """A handler answering with the request body."""
    return web.Response(body=await request.read())


@contextlib.asynccontextmanager
async def serve(handler: Handler, **options: Any) -> AsyncIterator[Served]:
    """Serve *handler* on 127.0.0.1 with a free port; clean up afterwards."""
    shutdown_timeout = options.pop("shutdown_timeout", 2.0)
    options.setdefault("access_log", None)
    server = web.Server(handler, **options)
    runner = web.ServerRunner(server, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Served(runner, site, server)
    finally:
        await runner.cleanup()


async def exchange(
    port: int,
    data: bytes,
    *,
    timeout: float = 5.0,
    until_close: bool = True,
    expect: int | None = None,
) -> bytes:
    """Send raw bytes; read until the server closes (or *expect* bytes arrive)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(data)
        await writer.drain()

        async def read() -> bytes:
            out = b""
            while True:
                if expect is not None and len(out) >= expect:
                    break
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
                if not until_close and expect is None and b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    length = _content_length(head)
                    if length is not None and len(rest) >= length:
                        break
            return out

        return await asyncio.wait_for(read(), timeout)  # (asyncio.timeout is 3.11's)
    finally:
        writer.close()


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream into (status, headers, body) using Content-Length or chunked."""
    out = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete head: {head!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            body, data = data[:n], data[n:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, data = data.partition(b"\r\n")
                    break
                body += data[:size]
                data = data[size + 2 :]
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body, data = data, b""
        out.append((status, headers, body))
    return out


@pytest.fixture
def caplog_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="lowserve")
    return caplog


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "lowserve" for ep in entry_points(group="pytest11"))


# lowserve.testing's fixtures: registered by the installed package's pytest11 entry
# point, or loaded here when lowserve runs from a source tree (PYTHONPATH=src).
if not _plugin_installed():
    pytest_plugins = ["lowserve.testing.plugin"]
