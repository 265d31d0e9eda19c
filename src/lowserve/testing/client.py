"""A handler served on a loopback port, and aiohttp's client pointed at it.

These follow ``aiohttp.test_utils``' ``RawTestServer`` and ``TestClient`` as a test
sees them, so a migrated suite changes only its imports:

* the server answers with ``handler_cancellation=True`` and ``debug=True`` (500s
  carry the traceback) unless told otherwise, as aiohttp's test server does;
* ``make_url`` is a ``yarl.URL``, joined to the server's root;
* a request (``client.get(...)``) is awaited for its response, or entered with
  ``async with``, which releases the response on exit; ``ws_connect`` likewise;
* the client's cookie jar takes cookies from an IP address (``127.0.0.1``).

aiohttp's client is imported only when a :class:`TestClient` is made (the
``lowserve[testing]`` extra); the server needs nothing beyond lowserve.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from yarl import URL

from ..conn.server import Handler, Server
from ..runner import ServerRunner, SockSite
from .helpers import get_port_socket

if TYPE_CHECKING:
    import aiohttp

__all__ = ["RawTestServer", "TestClient", "TestServer"]

SocketFactory = Callable[[str, int, socket.AddressFamily], socket.socket]
_T = TypeVar("_T")
_S = TypeVar("_S", bound="_AsyncOnly")


class _AsyncOnly:
    """``async with`` starts the object and closes it; plain ``with`` is a mistake,
    said at once (as aiohttp's test objects do)."""

    async def start_server(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        raise TypeError("Use async with instead")

    def __exit__(self, *exc_info: object) -> None:
        pass  # pragma: no cover - __enter__ raises

    async def __aenter__(self: _S) -> _S:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class RawTestServer(_AsyncOnly):
    """Serve *handler* on a port of 127.0.0.1 (*port*, or an ephemeral one) in this
    process. ``Server`` options go in ``**options`` (or to :meth:`start_server`);
    *socket_factory(host, port, family)* makes the bound socket."""

    __test__ = False  # not a pytest test class (it is also exported as TestServer)

    def __init__(
        self,
        handler: Handler,
        *,
        scheme: str = "",
        host: str = "127.0.0.1",
        port: int | None = None,
        skip_url_asserts: bool = False,
        socket_factory: SocketFactory = get_port_socket,
        loop: asyncio.AbstractEventLoop | None = None,
        **options: Any,
    ) -> None:
        self._handler = handler
        self.socket_factory = socket_factory
        self.scheme = scheme
        self.host = host
        self.port = port
        self.skip_url_asserts = skip_url_asserts
        self.runner: ServerRunner | None = None
        self._root: URL | None = None
        self._closed = False
        self._options = options

    @property
    def started(self) -> bool:
        return self.runner is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def handler(self) -> Server:
        """The :class:`~lowserve.web.Server` (aiohttp's name for it here)."""
        assert self.runner is not None and self.runner.server is not None, "not started"
        return self.runner.server

    @property
    def server(self) -> Server | None:
        """The :class:`~lowserve.web.Server`, once started."""
        return self.runner.server if self.runner is not None else None

    async def start_server(
        self, loop: asyncio.AbstractEventLoop | None = None, **options: Any
    ) -> None:
        """Listen and serve (once; later calls do nothing). ``ssl`` is an
        ``SSLContext`` for HTTPS; the other keywords are ``Server`` options."""
        if self.runner is not None:
            return
        options = {
            "access_log": None,
            "handler_cancellation": True,
            "debug": True,
            **self._options,
            **options,
        }
        ssl_context: ssl.SSLContext | None = options.pop("ssl", None)
        shutdown_timeout = options.pop("shutdown_timeout", 2.0)
        runner = ServerRunner(Server(self._handler, **options), shutdown_timeout=shutdown_timeout)
        await runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = self.socket_factory(self.host, self.port or 0, family)
        except OSError:
            await runner.cleanup()
            raise
        self.runner = runner
        self.port = sock.getsockname()[1]
        await SockSite(runner, sock, ssl_context=ssl_context).start()
        self.scheme = self.scheme or ("https" if ssl_context else "http")
        self._root = URL.build(scheme=self.scheme, host=self.host, port=self.port)

    def make_url(self, path: str | URL = "/") -> URL:
        """The absolute URL of *path* (a relative URL) on this server."""
        assert self._root is not None, "start the server first"
        url = URL(path)
        if self.skip_url_asserts:
            return URL(str(self._root) + str(path))
        assert not url.absolute, f"{path} is absolute: give the path only"
        return self._root.join(url)

    async def close(self) -> None:
        """Stop serving (once; later calls do nothing)."""
        if self.runner is not None and not self._closed:
            await self.runner.cleanup()
            self._root = None
            self.port = None
            self._closed = True


#: aiohttp's ``TestServer`` serves an ``Application``; lowserve has none, so it is
#: the raw server under that name too.
TestServer = RawTestServer


class _Pending(Generic[_T]):
    """A request on its way: awaited, it gives the response; entered with ``async
    with``, it gives the response and closes it on exit (aiohttp's two uses)."""

    __slots__ = ("_coro", "_done", "_result")

    def __init__(
        self, coro: Coroutine[Any, Any, _T], done: Callable[[_T], Awaitable[None]]
    ) -> None:
        self._coro = coro
        self._done = done
        self._result: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    async def __aenter__(self) -> _T:
        self._result = await self._coro
        return self._result

    async def __aexit__(self, *exc_info: object) -> None:
        if self._result is not None:
            await self._done(self._result)


async def _release(resp: aiohttp.ClientResponse) -> None:
    resp.release()
    await resp.wait_for_close()


async def _close_ws(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()


class TestClient(_AsyncOnly):
    """aiohttp's ``TestClient`` for a :class:`RawTestServer` (needs ``lowserve[testing]``).

    *cookie_jar* defaults to one that keeps cookies from IP addresses, as aiohttp's
    does; other keywords go to ``aiohttp.ClientSession``.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        server: RawTestServer,
        *,
        cookie_jar: aiohttp.abc.AbstractCookieJar | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **session_options: Any,
    ) -> None:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            raise ImportError(
                "lowserve.testing.TestClient needs aiohttp's client: "
                "pip install 'lowserve[testing]'"
            ) from None
        if not isinstance(server, RawTestServer):
            raise TypeError(f"server must be a TestServer, not {type(server)!r}")
        self._server = server
        self._cookie_jar = cookie_jar
        self._session_options = session_options
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._responses: list[aiohttp.ClientResponse] = []
        self._websockets: list[aiohttp.ClientWebSocketResponse] = []

    @property
    def server(self) -> RawTestServer:
        return self._server

    @property
    def app(self) -> None:
        """None: the low-level server has no application (aiohttp's attribute)."""
        return None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client session; it needs absolute URLs (see :meth:`make_url`)."""
        assert self._session is not None, "start the client first"
        return self._session

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int | None:
        return self._server.port

    def make_url(self, path: str | URL = "/") -> URL:
        return self._server.make_url(path)

    async def start_server(self) -> None:
        import aiohttp

        await self._server.start_server()
        if self._session is None:
            jar = self._cookie_jar or aiohttp.CookieJar(unsafe=True)
            self._session = aiohttp.ClientSession(cookie_jar=jar, **self._session_options)

    async def _request(self, method: str, path: str | URL, **kwargs: Any) -> aiohttp.ClientResponse:
        resp = await self.session.request(method, self.make_url(path), **kwargs)
        self._responses.append(resp)
        return resp

    def request(
        self, method: str, path: str | URL, **kwargs: Any
    ) -> _Pending[aiohttp.ClientResponse]:
        return _Pending(self._request(method, path, **kwargs), _release)

    def get(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("POST", path, **kwargs)

    def put(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str | URL, **kwargs: Any) -> _Pending[aiohttp.ClientResponse]:
        return self.request("OPTIONS", path, **kwargs)

    async def _ws_connect(self, path: str | URL, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        ws: aiohttp.ClientWebSocketResponse = await self.session.ws_connect(
            self.make_url(path), **kwargs
        )
        self._websockets.append(ws)
        return ws

    def ws_connect(
        self, path: str | URL, **kwargs: Any
    ) -> _Pending[aiohttp.ClientWebSocketResponse]:
        return _Pending(self._ws_connect(path, **kwargs), _close_ws)

    async def close(self) -> None:
        """Close the responses, WebSockets and session this client opened, then the
        server (once; later calls do nothing)."""
        if self._closed:
            return
        for resp in self._responses:
            resp.close()
        for ws in self._websockets:
            await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._server.close()
        self._closed = True
