"""What takes an HTTP/1.1 connection over: the upgrade slot, and the handoff to it.

Three things may read a connection's bytes in HTTP/1.1's place: the PROXY protocol
header's reader (before the first request), HTTP/2 (by TLS ALPN, or the client's
preface), and what a handler hands the connection to with a ``101`` (a WebSocket).
A :class:`Takeover` holds that receiver, and an upgrade request waiting for its
handler's decision with the bytes read past its head. The connection makes one only
when one of those begins, so a plain HTTP/1.1 request pays one ``is None`` test for
all of this.

Invariants:

* While ``receiver`` is set, every byte read and every transport event goes to it.
* After an upgrade head llhttp stops; until the handler takes the connection over
  or declines, what follows is held in ``tail`` (reading pauses past
  ``read_bufsize``). Taken over, the receiver gets it; declined, HTTP/1.1 parses it
  afresh.

Compiled (``takeover.pxd``), and typed in ``protocol.pxd``: each read a WebSocket
takes passes through :meth:`Takeover.data_received` as a C call, not an interpreted
frame (~700 instructions fewer per message, bench/PROFILE.md's round 7).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..wire import proxyprotocol
from .h2connection import PREFACE, Carrier, Http2Connection
from .proxyheader import ProxyHeaderReader

if TYPE_CHECKING:
    from ..api.connection import UpgradeReceiver
    from ..api.request import BaseRequest
    from .reader import RequestReader
    from .server import Server

__all__ = ["Takeover", "TakeoverPort"]


class TakeoverPort(Carrier, Protocol):
    """The connection a :class:`Takeover` belongs to (and HTTP/2's carrier)."""

    transport: asyncio.Transport | None
    peer: str | None
    is_tls: bool

    @property
    def task(self) -> asyncio.Task[None] | None: ...
    @property
    def current_request(self) -> BaseRequest | None: ...
    def pause_for_body(self, paused: bool) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def parse(self, data: bytes | memoryview) -> bool: ...
    def handed_over(self) -> None: ...
    def proxied(self, client: str | None, rest: bytes) -> None: ...
    def abort(self) -> None: ...


class Takeover:
    """The upgrade slot of one HTTP/1.1 connection (see the module docstring)."""

    __slots__ = ("_conn", "_reader", "_server", "paused", "receiver", "request", "tail")

    def __init__(self, conn: TakeoverPort, server: Server, reader: RequestReader) -> None:
        self._conn = conn
        self._server = server
        self._reader = reader
        #: What reads the connection in HTTP/1.1's place, once one does.
        self.receiver: UpgradeReceiver | None = None
        #: The receiver holds its input (the connection's reading pauses).
        self.paused = False
        #: An upgrade request not yet answered, and the bytes read past its head.
        self.request: BaseRequest | None = None
        self.tail: bytearray | None = None

    @property
    def idle(self) -> bool:
        """Nothing takes the connection over, and no upgrade waits: HTTP/1.1 goes on."""
        return self.receiver is None and self.request is None and self.tail is None

    def expect(self, request: BaseRequest) -> None:
        """*request*, an upgrade request, is about to be answered."""
        self.request = request

    def data_received(self, data: bytes) -> bool:
        """Whether *data* is taken here: by the receiver, or held behind an upgrade."""
        receiver = self.receiver
        if receiver is not None:
            receiver.data_received(data)
            return True
        tail = self.tail
        if tail is None:
            return False
        tail += data
        if len(tail) > self._server.options.read_bufsize:
            self._conn.pause_for_body(True)
        return True

    def stopped(self, tail: bytes | memoryview) -> None:
        """llhttp stopped after an upgrade head (or HTTP/2's preface); *tail* followed it."""
        reader = self._reader
        conn = self._conn
        if reader.preface:
            reader.preface = False
            if self._server.options.http2 and conn.task is None and conn.current_request is None:
                self.start_http2(PREFACE + bytes(tail))  # prior knowledge (h2c)
            else:
                reader.refuse_preface()
        elif self.receiver is not None:
            # The handler ran eagerly and took the connection over already.
            if tail:
                self.receiver.data_received(bytes(tail))
        elif (restated := reader.resume(tail)) is not None:
            conn.parse(restated)  # an upgrade request with a body: read that body
        elif self.request is None:
            # The handler already declined (it answered from within this parse).
            reader.fresh_parser()
            if tail:
                conn.feed(bytes(tail))
        else:
            # Held until the handler takes the connection over, or declines.
            self.tail = bytearray(tail)

    def answered(self) -> bytearray | None:
        """The upgrade request was answered. Unless the answer took the connection
        over, what the client sent after its head is HTTP again: returns it, to be
        parsed afresh (None: llhttp had not stopped yet, and goes on by itself)."""
        self.request = None
        if self.receiver is not None:
            return None
        tail, self.tail = self.tail, None
        if tail is not None:
            self._reader.fresh_parser()
        return tail

    def take(self, receiver: UpgradeReceiver) -> bytes:
        """*receiver* reads the connection from now on; returns the bytes already read
        past the upgrade head."""
        self.receiver = receiver
        self.request = None
        tail = bytes(self.tail or b"")
        self.tail = None
        return tail

    def hold(self, paused: bool) -> None:
        """The receiver holds its input (True), or takes it again."""
        self.paused = paused

    def start_http2(self, data: bytes) -> None:
        """The client speaks HTTP/2 (by ALPN, or *data* begins with its preface): hand
        the transport to an :class:`~lowserve.conn.h2connection.Http2Connection`."""
        conn = self._conn
        transport = conn.transport
        if transport is None:
            return
        h2 = Http2Connection(self._server, conn, transport, conn.peer, conn.is_tls)
        self.receiver = h2
        conn.handed_over()
        h2.start(data)

    def read_proxy_header(self) -> bool:
        """The connection starts with a PROXY protocol header, read here first; False
        (and the connection aborted) when its peer is not a trusted proxy.

        The reader sits in the upgrade slot: the data path that every request takes
        checks that slot already, and pays nothing more."""
        if self._conn.peer not in self._server.trusted_proxies:
            self._proxy_header_refused("not a trusted proxy")
            return False
        self.receiver = ProxyHeaderReader(self._proxy_header_read, self._proxy_header_refused)
        return True

    def _proxy_header_read(self, header: proxyprotocol.ProxyHeader, rest: bytes) -> None:
        self.receiver = None
        self._conn.proxied(header.client[0] if header.client is not None else None, rest)

    def _proxy_header_refused(self, detail: str) -> None:
        self._server.logger.debug("PROXY protocol from %s: %s: closing", self._conn.peer, detail)
        self._server.count_refusal("proxy")
        self.receiver = None
        self._conn.abort()

    # -- transport events, for the receiver -----------------------------------
    def eof_received(self) -> bool:
        """Whether the receiver took the client's EOF."""
        if self.receiver is None:
            return False
        self.receiver.eof_received()
        return True

    def traffic(self) -> tuple[int, int, int, int]:
        """The receiver's --metrics counts (bytes written, messages in and out,
        requests answered)."""
        receiver = self.receiver
        return (0, 0, 0, 0) if receiver is None else receiver.traffic()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.receiver is not None:
            self.receiver.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.receiver is not None:
            self.receiver.pause_writing()

    def resume_writing(self) -> bool:
        """Whether the receiver took the resumption."""
        if self.receiver is None:
            return False
        self.receiver.resume_writing()
        return True

    def shutdown(self) -> None:
        if self.receiver is not None:
            self.receiver.shutdown()

    def check_timeout(self, now: float) -> bool:
        """Whether HTTP/2 judged the sweep (its streams have their own timeouts)."""
        if isinstance(self.receiver, Http2Connection):
            self.receiver.check_timeout(now)
            return True
        return False

    def cancel(self) -> None:
        """Forced stop: HTTP/2's handlers are cancelled too."""
        if isinstance(self.receiver, Http2Connection):
            self.receiver.cancel()
