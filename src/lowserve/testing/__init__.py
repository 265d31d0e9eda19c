"""Testing handlers: ``aiohttp.test_utils``' shapes, so a migrated test suite changes imports.

* :func:`make_mocked_request`: a :class:`~lowserve.web.BaseRequest` without a socket,
  for unit tests of a handler. It needs nothing beyond lowserve.
* :class:`RawTestServer` (and :data:`TestServer`, the same): serve a handler on an
  ephemeral loopback port in this process; an async context manager.
* :class:`TestClient`: requests and ``ws_connect`` against such a server, on aiohttp's
  client, installed by the ``lowserve[testing]`` extra (lowserve itself never imports
  aiohttp).
* A pytest plugin (:mod:`lowserve.testing.plugin`, registered as ``lowserve``) with the
  ``lowserve_server`` and ``lowserve_client`` fixtures.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..api.request import BaseRequest
from ..api.response import StreamResponse
from ..api.streams import EMPTY_STREAM, BodyStream
from ..conn.server import Server
from ..runner import ServerRunner, SockSite
from ..wire.head import HttpVersion, HttpVersion11

if TYPE_CHECKING:
    import aiohttp

    from ..api.connection import UpgradeReceiver

__all__ = ["RawTestServer", "TestClient", "TestServer", "make_mocked_request"]

Handler = Callable[[BaseRequest], Awaitable[StreamResponse]]


class _MockedConnection:
    """What a request and its response need from a connection, writing into a list."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None, *, tls: bool, closing: bool) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = "127.0.0.1"
        self.is_tls = tls
        self.server_header: str | None = None
        self.client_max_fields = 1000
        self.written: list[bytes] = []
        self._closing = closing

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop given, else the one running when a body read first waits."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def write_paused(self) -> bool:
        return False

    def write_bytes(self, data: bytes) -> None:
        self.written.append(bytes(data))

    async def drain(self) -> None:
        return None

    def response_started(self, resp: StreamResponse) -> None:
        return None

    def may_keep_alive(self, request: BaseRequest) -> bool:
        return not self._closing

    def body_cut_short(self) -> None:
        self._closing = True

    def take_over(self, receiver: UpgradeReceiver) -> bytes:
        return b""

    def pause_for_body(self, paused: bool) -> None:
        return None


def make_mocked_request(
    method: str,
    path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    *,
    version: HttpVersion = HttpVersion11,
    closing: bool = False,
    payload: bytes | BodyStream | None = None,
    sslcontext: Any = None,
    client_max_size: int = 1024**2,
    client_max_fields: int = 1000,
    loop: asyncio.AbstractEventLoop | None = None,
    **ignored: Any,
) -> BaseRequest:
    """A request for *method* and *path* (with its query), as a handler would get it.

    *payload* is the body: bytes, or a ``BodyStream`` you feed yourself. A response
    the handler prepares writes into ``request.protocol.written``. aiohttp's keywords
    that concern its application (``app``, ``match_info``, ``writer``…) are accepted
    and ignored.
    """
    conn = _MockedConnection(loop, tls=sslcontext is not None, closing=closing)
    conn.client_max_fields = client_max_fields
    items = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    if version >= HttpVersion11 and not any(k.lower() == "host" for k, _ in items):
        items.append(("Host", "localhost"))
    content: BodyStream
    if payload is None:
        content = EMPTY_STREAM
    elif isinstance(payload, BodyStream):
        content = payload
    else:
        content = BodyStream(conn, 2**16, None, len(payload))
        content.feed_data(payload)
        content.feed_eof()
        items.append(("Content-Length", str(len(payload))))
    # as the wire would carry them: the request decodes header bytes as UTF-8
    raw = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in items]
    keep_alive = not closing and version >= HttpVersion11
    return BaseRequest(
        conn,
        method,
        path,
        version,
        raw,
        keep_alive,
        content,
        client_max_size=client_max_size,
    )


class RawTestServer:
    """Serve *handler* on an ephemeral port of 127.0.0.1 in this process.

    ``Server`` options go in ``**options``; :meth:`make_url` builds the URL of a path.
    """

    __test__ = False  # not a pytest test class (it is also exported as TestServer)

    def __init__(
        self, handler: Handler, *, scheme: str = "http", host: str = "127.0.0.1", **options: Any
    ) -> None:
        options.setdefault("access_log", None)
        self.handler = handler
        self.scheme = scheme or "http"
        self.host = host
        self.port: int | None = None
        self.server: Server | None = None
        self.runner: ServerRunner | None = None
        self._options = options

    async def start_server(self, **kwargs: Any) -> None:
        if self.runner is not None:
            return
        shutdown_timeout = self._options.pop("shutdown_timeout", 2.0)
        self.server = Server(self.handler, **self._options)
        self.runner = ServerRunner(self.server, shutdown_timeout=shutdown_timeout)
        await self.runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.bind((self.host, 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        await SockSite(self.runner, sock).start()

    def make_url(self, path: str = "/") -> str:
        assert self.port is not None, "start the server first"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def __aenter__(self) -> RawTestServer:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


#: aiohttp's ``TestServer`` serves an ``Application``; lowserve has none, so it is
#: the raw server under that name too.
TestServer = RawTestServer


class TestClient:
    """aiohttp's ``TestClient`` for a :class:`RawTestServer` (needs ``lowserve[testing]``)."""

    __test__ = False  # not a pytest test class

    def __init__(self, server: RawTestServer, **session_options: Any) -> None:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            raise ImportError(
                "lowserve.testing.TestClient needs aiohttp's client: "
                "pip install 'lowserve[testing]'"
            ) from None
        self.server = server
        self._session_options = session_options
        self._session: aiohttp.ClientSession | None = None
        self._responses: list[aiohttp.ClientResponse] = []
        self._websockets: list[aiohttp.ClientWebSocketResponse] = []

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "start the client first"
        return self._session

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int | None:
        return self.server.port

    def make_url(self, path: str = "/") -> str:
        return self.server.make_url(path)

    async def start_server(self) -> None:
        import aiohttp

        await self.server.start_server()
        if self._session is None:
            self._session = aiohttp.ClientSession(**self._session_options)

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        resp = await self.session.request(method, self.make_url(path), **kwargs)
        self._responses.append(resp)
        return resp

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("OPTIONS", path, **kwargs)

    async def ws_connect(self, path: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        ws: aiohttp.ClientWebSocketResponse = await self.session.ws_connect(
            self.make_url(path), **kwargs
        )
        self._websockets.append(ws)
        return ws

    async def close(self) -> None:
        for resp in self._responses:
            resp.release()
        for ws in self._websockets:
            await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.server.close()

    async def __aenter__(self) -> TestClient:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
