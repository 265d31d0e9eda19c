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


def h2_client_machine() -> Any:
    """h2's client state machine, except that the server's GOAWAY still lets the
    streams already open be answered (the graceful stop's two-step GOAWAY)."""
    import h2.connection as c

    class Machine(c.H2ConnectionStateMachine):
        _transitions = {
            **c.H2ConnectionStateMachine._transitions,
            (c.ConnectionState.CLIENT_OPEN, c.ConnectionInputs.RECV_GOAWAY): (
                None,
                c.ConnectionState.CLIENT_OPEN,
            ),
            (c.ConnectionState.IDLE, c.ConnectionInputs.RECV_GOAWAY): (
                None,
                c.ConnectionState.IDLE,
            ),
        }

    return Machine()


class H2Client:
    """An HTTP/2 client driven frame by frame: python-hyper's ``h2`` over a socket.

    ``events`` collects every event received; ``closed`` is set at EOF. Requests are
    sent with :meth:`send_request` (or whole with :meth:`request`), frames the
    library would not send are written with :meth:`send_raw`.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: dict[int, int] | None = None,
    ) -> None:
        import h2.config
        import h2.connection

        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.state_machine = h2_client_machine()
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events: list[Any] = []
        self.closed = False
        self._unsent: dict[int, tuple[bytes, bool]] = {}
        #: Hand the window back as DATA arrives (off: the client reads nothing).
        self.auto_ack = True
        self.flush()

    @classmethod
    async def connect(
        cls, port: int, ssl: Any = None, settings: dict[int, int] | None = None
    ) -> H2Client:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port, ssl=ssl, server_hostname="localhost" if ssl else None
            ),
            5,
        )
        return cls(reader, writer, settings)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send_request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
        end: bool = True,
    ) -> int:
        """Open a stream with this request; returns its ID."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (":method", method),
            (":path", path),
            (":scheme", "http"),
            (":authority", "localhost"),
        ]
        fields += headers or []
        self.conn.send_headers(stream_id, fields, end_stream=end and not body)
        self.flush()
        self._unsent[stream_id] = (body or b"", end and bool(body))
        self._send_some()
        return stream_id

    def _send_some(self) -> None:
        """Send the request bodies as far as the server's windows allow."""
        for stream_id, (body, end) in list(self._unsent.items()):
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            while body and window > 0:
                piece, body = body[:window], body[window:]
                self.conn.send_data(stream_id, piece, end_stream=end and not body)
                window = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                )
            if body:
                self._unsent[stream_id] = (body, end)
            else:
                del self._unsent[stream_id]
        self.flush()

    async def read_until(self, done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """Read until an event satisfies *done* (returned), or the connection ends (None)."""
        import h2.events
        import h2.exceptions

        for event in self.events:
            if done(event):
                return event

        async def read() -> Any:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.closed = True
                    return None
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    events = []
                if self._unsent:
                    self._send_some()
                found = None
                for event in events:  # all of them kept: a later call may want the rest
                    self.events.append(event)
                    if (
                        self.auto_ack
                        and isinstance(event, h2.events.DataReceived)
                        and event.flow_controlled_length
                    ):
                        self.conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    self.flush()
                    if found is None and done(event):
                        found = event
                self.flush()
                if found is not None:
                    return found

        return await asyncio.wait_for(read(), timeout)

    async def response(
        self, stream_id: int, timeout: float = 5.0
    ) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body of the response on *stream_id*."""
        import h2.events

        def ended(event: Any) -> bool:
            return getattr(event, "stream_id", None) == stream_id and isinstance(
                event, (h2.events.StreamEnded, h2.events.StreamReset)
            )

        end = await self.read_until(ended, timeout)
        status, headers, body = 0, {}, b""
        for event in self.events:
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                # str, as header_encoding="utf-8" makes them (h2 types them as bytes)
                headers = {str(name): str(value) for name, value in event.headers}
                status = int(headers.pop(":status"))
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
        if not isinstance(end, h2.events.StreamEnded):
            raise ConnectionResetError(f"stream {stream_id} ended by {end!r}")
        return status, headers, body

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        return await self.response(self.send_request(method, path, body, headers))

    async def goaway(self, timeout: float = 5.0) -> Any:
        """The server's GOAWAY (None if the connection ended without one)."""
        import h2.events

        return await self.read_until(
            lambda e: isinstance(e, h2.events.ConnectionTerminated), timeout
        )

    def close(self) -> None:
        self.writer.close()
