"""Testing handlers: ``aiohttp.test_utils``' shapes, so a migrated test suite changes imports.

* :func:`make_mocked_request`: a :class:`~lowserve.web.BaseRequest` without a socket,
  for unit tests of a handler. It needs nothing beyond lowserve.
* :class:`RawTestServer` (and :data:`TestServer`, the same): serve a handler on a
  loopback port in this process; an async context manager (:mod:`.client`).
* :class:`TestClient`: requests and ``ws_connect`` against such a server, on aiohttp's
  client, installed by the ``lowserve[testing]`` extra (lowserve itself never imports
  aiohttp).
* :mod:`.helpers`: ``unused_port``, ``get_port_socket``, ``get_unused_port_socket``,
  ``make_mocked_coro``, ``setup_test_loop``, ``teardown_test_loop``, ``loop_context``.
* A pytest plugin (:mod:`lowserve.testing.plugin`, registered as ``lowserve``) with the
  ``lowserve_server`` and ``lowserve_client`` fixtures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..api.request import BaseRequest, host_of_sockname
from ..api.response import StreamResponse
from ..api.streams import EMPTY_STREAM, BodyStream
from ..options import DEFAULT_SERVER_HEADER
from ..wire.head import HttpVersion, HttpVersion11
from .client import RawTestServer, TestClient, TestServer
from .helpers import (
    get_port_socket,
    get_unused_port_socket,
    loop_context,
    make_mocked_coro,
    setup_test_loop,
    teardown_test_loop,
    unused_port,
)

if TYPE_CHECKING:
    from ..api.connection import UpgradeReceiver

__all__ = [
    "RawTestServer",
    "TestClient",
    "TestServer",
    "get_port_socket",
    "get_unused_port_socket",
    "loop_context",
    "make_mocked_coro",
    "make_mocked_request",
    "setup_test_loop",
    "teardown_test_loop",
    "unused_port",
]


class _MockedConnection:
    """What a request and its response need from a connection, writing into a list."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None, *, tls: bool, closing: bool) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None  # as aiohttp's mock: no peer name
        self.client_eof = False
        self.is_tls = tls
        self.server_header: str | None = DEFAULT_SERVER_HEADER  # as a Server's default
        self.client_max_fields = 1000
        self.written: list[bytes] = []
        self._closing = closing
        self.task: asyncio.Task[None] | None = None  # no handler task: request.task is None

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

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
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
    transport: Any = None,
    **ignored: Any,
) -> BaseRequest:
    """A request for *method* and *path* (with its query), as a handler would get it.

    *payload* is the body: bytes, or a ``BodyStream`` you feed yourself. A response
    the handler prepares writes into ``request.protocol.written`` (with the default
    ``Server`` header). *transport* (a mock, say) is ``request.transport``, and its
    ``sockname`` and ``peername`` give ``host`` (without a Host header) and
    ``remote``, as in aiohttp; without one the request came to 127.0.0.1:80 from no
    known peer. aiohttp's keywords that concern its application (``app``,
    ``match_info``, ``writer``…) are accepted and ignored.
    """
    conn = _MockedConnection(loop, tls=sslcontext is not None, closing=closing)
    conn.client_max_fields = client_max_fields
    sockname: Any = ("127.0.0.1", 80)  # aiohttp's mocked transport's
    if transport is not None:
        conn.transport = transport
        sockname = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        if peer is not None:
            conn.peer = str(peer[0]) if isinstance(peer, list | tuple) else str(peer)
    items = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    # The host from Host, else an absolute-form target's, else the local address.
    has_host = any(k.lower() == "host" for k, _ in items) or (path[:1] != "/" and "://" in path)
    host = None if has_host else host_of_sockname(sockname)
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
        host=host,
        client_max_fields=client_max_fields,
    )
