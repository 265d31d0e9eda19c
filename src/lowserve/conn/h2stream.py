"""One HTTP/2 stream: its request's connection, and its answer's way out.

An :class:`Http2Stream` is the ``request.protocol`` of its request (the
:class:`~lowserve.api.connection.StreamConnection` a response writes to) and the port
its :class:`~lowserve.conn.responder.Responder` answers through; its connection
(:mod:`.h2connection`) owns the frames, and calls it with what arrives for it.

Invariants:

* A request body holds at most its stream's receive window beyond ``read_bufsize``:
  the window is handed back as the handler reads, and held while the body is full.
* A response holds at most one ``write()`` beyond the peer's window: its writer
  waits in ``drain()`` until a WINDOW_UPDATE (or the stream's end) wakes it.
* Once the stream is reset, nothing more is sent on it, and its waiters fail.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from ..api.exceptions import ClientDisconnectedError, RequestPayloadError
from ..api.response import Response, StreamResponse
from ..api.streams import EMPTY_STREAM, BodyStream
from ..wire.codings import BodyDecoder
from ..wire.errors import WireError
from .flow import BodyWatch
from .responder import Responder

if TYPE_CHECKING:
    from ..api.connection import UpgradeReceiver
    from ..api.request import BaseRequest
    from ..options import ServerOptions
    from .h2connection import Http2Connection

__all__ = ["Http2Stream"]


class Http2Stream:
    """One request stream: its request's ``protocol`` (a
    :class:`~lowserve.api.connection.StreamConnection`) and its answer's way out."""

    __slots__ = (
        "_conn",
        "_cut_short",
        "_decoder",
        "_ended",
        "_pending",
        "_unacked",
        "_waiter",
        "blocked_since",
        "body",
        "body_watch",
        "done",
        "head_sent",
        "id",
        "peer",
        "request",
        "reset",
        "responder",
    )

    def __init__(self, conn: Http2Connection, stream_id: int) -> None:
        self._conn = conn
        self.id = stream_id
        self.peer = conn.peer
        self.request: BaseRequest | None = None
        #: The request body being received (None: none, or it has ended).
        self.body: BodyStream | None = None
        self._decoder: BodyDecoder | None = None
        #: Body bytes received but not yet handed back to the peer's window (held
        #: while the body's buffer is full).
        self._unacked = 0
        self.body_watch: BodyWatch | None = None
        #: Response bytes beyond the peer's window, waiting for a WINDOW_UPDATE.
        self._pending = bytearray()
        self._ended = False  # the response's end is said (or waits behind _pending)
        self._cut_short = False
        self._waiter: asyncio.Future[None] | None = None
        #: The coarse clock when the response first waited on the peer's window (0: not).
        self.blocked_since = 0.0
        self.head_sent = False
        #: The stream was reset (by either side): nothing more is sent on it.
        self.reset = False
        #: The handler is done and its answer finished (or given up).
        self.done = False
        #: Runs the stream's handler and answers through this stream (its port).
        self.responder = Responder(conn.server, conn.loop, self)

    def __repr__(self) -> str:
        return f"<Http2Stream {self.id}>"

    # -- the Connection interface (what requests, bodies and responses use) -----
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._conn.loop

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._conn.transport

    @property
    def is_tls(self) -> bool:
        return self._conn.is_tls

    @property
    def server_header(self) -> str | None:
        return self._conn.opts.server_header

    client_eof = False

    @property
    def client_max_fields(self) -> int:
        return self._conn.opts.client_max_fields

    @property
    def write_paused(self) -> bool:
        return bool(self._pending) or self._conn.write_paused

    def is_open(self) -> bool:
        return not self.reset and self._conn.transport is not None

    def write_bytes(self, data: bytes) -> None:
        """Send body bytes as DATA frames, as far as the peer's window allows; the
        rest waits for its WINDOW_UPDATE (``write_paused`` meanwhile)."""
        if not self.is_open():
            raise ClientDisconnectedError("Cannot write to closing transport")
        if not data:
            return
        if self._pending:
            self._pending += data
        else:
            self._conn.send_data(self, data, False)

    async def drain(self) -> None:
        """Until the peer's window has taken what was written, and the transport's
        buffer is below its high-water mark."""
        while True:
            if not self.is_open():
                raise ClientDisconnectedError("Cannot write to closing transport")
            if not self.write_paused:
                return
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = self.loop.create_future()
            await asyncio.shield(waiter)

    def wake(self) -> None:
        """Wake the writer waiting in :meth:`drain` (it looks again)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def response_started(self, resp: StreamResponse) -> None:
        self.head_sent = self.responder.head_sent = True

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs this stream's handler (``request.task``)."""
        return self.responder.task

    def may_keep_alive(self, request: BaseRequest) -> bool:
        return True

    def body_cut_short(self) -> None:
        """The response ended before its declared length: the stream is reset, not ended."""
        self._cut_short = True

    def take_over(self, receiver: UpgradeReceiver) -> bytes:
        raise ConnectionResetError("an HTTP/2 stream cannot be taken over")

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def pause_for_body(self, paused: bool) -> None:
        """The body's buffer crossed a water mark: hold (or hand back) the window."""
        if not paused and self._unacked:
            size, self._unacked = self._unacked, 0
            self._conn.acknowledge(self.id, size)

    def send_continue(self) -> None:
        """``100 Continue``: the handler reads a body the client holds back."""
        if not self.head_sent and self.is_open():
            self._conn.send_fields(self, [(":status", "100")], False)

    # -- the StreamConnection interface ------------------------------------------
    def send_fields(self, fields: list[tuple[str, str]], end_stream: bool) -> None:
        if not self.is_open():
            raise ClientDisconnectedError("Cannot write to closing transport")
        self.head_sent = self.responder.head_sent = True
        if end_stream:
            self._ended = True
        self._conn.send_fields(self, fields, end_stream)

    def end_body(self) -> None:
        if self._ended or not self.is_open():
            return
        self._ended = True
        if self._cut_short:
            self._conn.reset_stream(self, ErrorCodes.INTERNAL_ERROR)
        elif not self._pending:
            self._conn.end_stream(self)
        # else: sent with the last pending bytes (flush_pending)

    # -- the responder's port ------------------------------------------------------
    def send_whole(self, request: BaseRequest, resp: Response) -> bool:
        """A response with its body in memory: HEADERS and DATA in one go; False,
        with nothing sent, once the stream cannot be written to."""
        if not self.is_open():
            return False
        fields, body = resp.render_h2(request)
        self.send_fields(fields, not body)
        if body:
            self._ended = True
            self._conn.send_data(self, body, True)
        return True

    def answered(self, request: BaseRequest, keep_alive: bool | None) -> None:
        """The handler's answer is finished (its end said, or the stream reset)."""
        self.done = True
        self._conn.answered += 1  # --metrics: keep-alive reuse
        if request.content is not EMPTY_STREAM:
            request.finish()  # closes the files post() spooled
        if not self._ended and self.is_open():
            self.end_body()
        self._conn.forget(self)

    def close(self) -> None:
        """The answer could not be finished: reset the stream."""
        self.done = True
        if self.is_open():
            self._conn.reset_stream(self, ErrorCodes.INTERNAL_ERROR)
        self._conn.forget(self)

    def stopped(self) -> bool:
        """One request per stream: once it is answered, the responder's task ends."""
        return self.done

    def finished(self) -> None:
        """The responder's task has ended: nothing to do (the connection forgets the
        stream once it is done)."""

    # -- what the connection calls ----------------------------------------------
    def take_pending(self, window: int) -> tuple[bytes, bool]:
        """Up to *window* of the bytes waiting for the peer's window, and whether the
        stream ends with them."""
        pending = self._pending
        data = bytes(pending[:window])
        del pending[:window]
        return data, not pending and self._ended

    def hold(self, rest: bytes | memoryview) -> None:
        """Keep *rest* until the peer's window opens."""
        self._pending += rest

    @property
    def pending(self) -> int:
        return len(self._pending)

    def open_body(self, request_fields: dict[bytes, bytes], opts: ServerOptions) -> BodyStream:
        """The body stream for a request whose HEADERS did not end the stream."""
        declared = request_fields.get(b"content-length")
        on_wait = None
        if request_fields.get(b"expect", b"").lower() == b"100-continue" and opts.expect_continue:
            on_wait = self.send_continue
        body = self.body = BodyStream(
            self, opts.read_bufsize, on_wait, int(declared) if declared is not None else None
        )
        cenc = request_fields.get(b"content-encoding")
        if cenc is not None and opts.auto_decompress:
            coding = cenc.lower().strip()
            if coding != b"identity":
                self._decoder = BodyDecoder(
                    "gzip" if coding == b"x-gzip" else coding.decode(), opts.client_max_size
                )
        return body

    def data_received(self, data: bytes, flow_length: int) -> None:
        """DATA for the request body: into its stream; the window is handed back at
        once unless the stream's buffer is full (then as the handler reads)."""
        body = self.body
        if body is None:
            self._conn.acknowledge(self.id, flow_length)
            return
        if self._decoder is not None and data:
            try:
                data = self._decoder.decode(data)
            except WireError as err:
                self.body_failed(RequestPayloadError(err.detail, err.status))
                self._conn.acknowledge(self.id, flow_length)
                return
        body.feed_data(data)
        if body.reading_paused:
            self._unacked += flow_length
        else:
            self._conn.acknowledge(self.id, flow_length)

    def body_ended(self) -> None:
        body = self.body
        if body is not None:
            self.body = None
            body.feed_eof()

    def sweep(self, now: float) -> None:
        """The connection's sweep, about once a second: a response the peer gave no
        window for ``send_timeout`` is reset (CANCEL); a request body that stopped
        for ``body_read_timeout`` fails with a 408."""
        opts = self._conn.opts
        since = self.blocked_since
        if since and opts.send_timeout and not self.reset and now - since >= opts.send_timeout:
            self._conn.server.logger.debug(
                "HTTP/2 client %s gave stream %d no window for %.0f s: reset",
                self.peer,
                self.id,
                opts.send_timeout,
            )
            self._conn.reset_stream(self, ErrorCodes.CANCEL)
            return
        body = self.body
        if body is not None and opts.body_read_timeout:
            watch = self.body_watch
            if watch is None:
                watch = self.body_watch = BodyWatch()
            watch.sample(body, not body.reading_paused and not body.continue_pending, now)
            if watch.stalled_for(now) >= opts.body_read_timeout:
                self.body_failed(RequestPayloadError("request body not received in time", 408))

    def body_failed(self, exc: BaseException) -> None:
        body = self.body
        if body is not None:
            self.body = None
            body.set_exception(exc)

    def lost(self, exc: BaseException) -> None:
        """The stream was reset or the connection lost: fail the body and the writer."""
        self.reset = True
        self.body_failed(exc)
        self._pending.clear()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: a writer cancelled meanwhile would not
