"""HTTP/2: one connection's frames, its streams, their flow control and its bounds.

A connection becomes HTTP/2 in one of two ways, both decided by
:class:`~lowserve.conn.protocol.HttpProtocol` before any HTTP/1.1 request runs:
by TLS ALPN (``h2``), or by the client's prior knowledge (the connection preface
``PRI * HTTP/2.0``, at which llhttp stops as it stops at an upgrade). Either
way the transport is handed to an :class:`Http2Connection` through the upgrade slot,
as a WebSocket takes it over. Frames and HPACK are python-hyper's ``h2`` (sans-I/O);
this module is the glue: requests for the handler, responses as frames, flow
control, timeouts, the drain and the bounds.

Each stream is an :class:`Http2Stream`: the ``request.protocol`` of its request (the
:class:`~lowserve.api.connection.StreamConnection` a response writes to) and what
its handler's answer is sent through. Handlers run concurrently, one per stream.

Invariants:

* Memory is bounded by windows, never by a count the client controls: a request
  body holds at most its stream's receive window beyond ``read_bufsize`` (the
  window is handed back as the handler reads, and held while its stream is
  full); a response holds at most one ``write()`` beyond the peer's window (its
  writer waits in ``drain()``); while the transport's buffer is over its
  high-water mark nothing more is read, so frames that must be answered (PING,
  SETTINGS) cannot pile answers up.
* Every client fault is answered with a stream reset or a GOAWAY naming its code,
  logged as one DEBUG line; a flood is also counted by the server's rate-limited
  WARNING (``note_refusal``), one kind per attack.
* A graceful stop sends GOAWAY twice (RFC 9113 §6.8): first with the largest
  stream ID, then, once a PING has come back, with the last stream accepted;
  streams opened after that are refused with ``REFUSED_STREAM``, so a client may
  retry them. The connection closes when its last stream is answered.
* ``h2`` itself never sends GOAWAY here except on a protocol error that ends the
  connection: its state machine would refuse to send anything after one, so the
  graceful GOAWAY frames are written by this module, and a client's GOAWAY leaves
  the streams it already opened to be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from ..api.exceptions import ClientDisconnectedError, RequestPayloadError
from ..api.response import Response, StreamResponse
from ..api.streams import EMPTY_STREAM, BodyStream
from ..wire.codings import SUPPORTED_CODINGS, BodyDecoder
from ..wire.errors import WireError
from ..wire.framing import decide
from ..wire.head import REASONS, HttpVersion20, complete_fields, h2_fields
from .flow import BodyWatch
from .responder import Responder

if TYPE_CHECKING:
    from ..api.connection import UpgradeReceiver
    from ..api.request import BaseRequest
    from ..options import ServerOptions
    from .server import Server

__all__ = ["Http2Connection", "Http2Stream"]

#: The client's connection preface (RFC 9113 §3.4), which llhttp checks and stops after.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_MAX_STREAM_ID = 2**31 - 1
_FLOOD_WINDOW = 10.0  # seconds over which resets and control frames are counted
_PING_DRAIN = b"lsdrain!"  # the opaque data of the graceful stop's PING
_CONN_WINDOW = 1 << 24  # the connection's receive window (streams have their own)


class Drain(enum.Enum):
    """Where a connection is in a graceful stop (RFC 9113 §6.8's two GOAWAYs)."""

    SERVING = "serving"  #: no stop begun
    #: the first GOAWAY (the largest stream ID) and a PING are out
    ANNOUNCED = "announced"
    #: the PING came back: the second GOAWAY names the last stream; later ones are refused
    LAST_FIXED = "last fixed"


_SERVING, _ANNOUNCED, _LAST_FIXED = Drain.SERVING, Drain.ANNOUNCED, Drain.LAST_FIXED


class _StateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a client's GOAWAY leaves the
    connection open for the streams it already opened (h2 would refuse to send their
    answers)."""

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,  # noqa: SLF001 (h2's table, extended)
        (
            h2.connection.ConnectionState.SERVER_OPEN,
            h2.connection.ConnectionInputs.RECV_GOAWAY,
        ): (None, h2.connection.ConnectionState.SERVER_OPEN),
        (
            h2.connection.ConnectionState.IDLE,
            h2.connection.ConnectionInputs.RECV_GOAWAY,
        ): (None, h2.connection.ConnectionState.IDLE),
    }


class _Values(list[int]):
    """A setting's values, the one in force first: what h2 keeps in a ``deque`` (about
    760 bytes each, 14 of them a connection), in 64 bytes."""

    def popleft(self) -> int:
        return self.pop(0)


class _Settings(h2.settings.Settings):
    """h2's settings, each setting's values in a :class:`_Values`: an idle connection's
    memory was ~21 KB, half of it these deques (tracemalloc)."""

    def __init__(self, client: bool = True, initial_values: Any = None) -> None:
        super().__init__(client, initial_values)
        self._compact()

    def __setitem__(self, key: Any, value: int) -> None:
        super().__setitem__(key, value)
        self._compact()

    def _compact(self) -> None:
        values: dict[Any, Any] = self._settings
        for key, held in values.items():
            if type(held) is not _Values:
                values[key] = _Values(held)


class _Encoder(hpack.Encoder):
    """HPACK without Huffman coding: the pure-Python Huffman coder cost about a sixth
    of a response's time; heads grow by about a quarter (the dynamic table still
    indexes repeated fields)."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        return super().encode(headers, huffman=False)


class Carrier(Protocol):
    """What an :class:`Http2Connection` needs from the connection that handed it the
    transport (:class:`~lowserve.conn.protocol.HttpProtocol`)."""

    loop: asyncio.AbstractEventLoop

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close_lingering(self) -> None: ...


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


class Http2Connection:
    """One HTTP/2 connection, from the transport an HTTP/1.1 connection handed over.

    An :class:`~lowserve.api.connection.UpgradeReceiver`: the carrier forwards its
    transport's calls here.
    """

    def __init__(
        self,
        server: Server,
        carrier: Carrier,
        transport: asyncio.Transport,
        peer: str | None,
        is_tls: bool,
    ) -> None:
        self._server = self.server = server
        self.opts = opts = server.options
        self._carrier = carrier
        self.loop = carrier.loop
        self.transport: asyncio.Transport | None = transport
        self.peer = peer
        self.is_tls = is_tls
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,  # h2_fields checked them
            normalize_outbound_headers=False,
            validate_inbound_headers=False,  # _make_request checks them, in its one pass
            normalize_inbound_headers=False,
        )
        conn = self._h2 = h2.connection.H2Connection(config)
        conn.state_machine = _StateMachine()
        conn.encoder = _Encoder()
        self._window = max(65535, opts.read_bufsize)
        conn.remote_settings = _Settings(client=True)
        conn.local_settings = _Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: opts.http2_max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: opts.http2_max_header_list_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self._window,
            },
        )
        # Bound decoding before the client has acknowledged the setting (h2 sets it then).
        conn.decoder.max_header_list_size = opts.http2_max_header_list_size
        conn.initiate_connection()
        conn.increment_flow_control_window(_CONN_WINDOW - 65535)
        self._streams: dict[int, Http2Stream] = {}
        self.write_paused = False
        self._receiving = False
        self._flush_due = False
        #: The graceful stop (see Drain); only shutdown and _ping_acked change it.
        self._drain = _SERVING
        self._last_stream = _MAX_STREAM_ID
        self._client_goaway = False
        self._client_eof = False
        self._closing = False
        #: Flood accounting over _FLOOD_WINDOW seconds: streams the client reset, and
        #: frames that carry no request (PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty DATA).
        self._window_end = server.now + _FLOOD_WINDOW
        self._resets = 0
        self._control = 0
        #: When the connection last had no stream (for the idle timeout), and whether
        #: any request has arrived (until then the header-read timeout applies).
        self._idle_since = server.now
        self._any_request = False
        self._write_blocked_since = 0.0

    # -- UpgradeReceiver ---------------------------------------------------------
    def start(self, data: bytes) -> None:
        """Send our SETTINGS, then read what the client sent already (its preface)."""
        self.flush()
        if data:
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fault("protocol", f"HTTP/2 protocol error: {exc}", None)
            return
        except Exception:  # h2's own bug: the connection cannot go on
            self._server.logger.exception("HTTP/2 frames from %s could not be read", self.peer)
            if self.transport is not None:
                self.transport.abort()
            return
        self._receiving = True
        try:
            for event in events:
                handler = _EVENTS.get(type(event))
                if handler is not None:
                    handler(self, event)
        finally:
            self._receiving = False
        self.flush()

    def eof_received(self) -> None:
        """The client sent its last byte: answer the streams it opened, then close
        (at once when the connection is closing already)."""
        self._client_eof = True
        if self._closing:
            if self.transport is not None:
                self.transport.close()
        else:
            self._client_goaway = True
            if not self._streams:
                self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self._closing = True
        err = ClientDisconnectedError("Connection lost")
        for stream in list(self._streams.values()):
            stream.lost(err)
            stream.responder.lost()  # cancels the handler with handler_cancellation

    def pause_writing(self) -> None:
        self.write_paused = True
        self._write_blocked_since = self._server.now or 1.0
        self._carrier.pause_reading()  # no more frames whose answers would pile up

    def resume_writing(self) -> None:
        self.write_paused = False
        self._write_blocked_since = 0.0
        self._carrier.resume_reading()
        for stream in list(self._streams.values()):
            stream.wake()

    def shutdown(self) -> None:
        """The server stops: the graceful GOAWAY (the two-step form)."""
        if self._drain is not _SERVING or self._closing:
            return
        self._drain = _ANNOUNCED
        self._write_goaway(_MAX_STREAM_ID, ErrorCodes.NO_ERROR)
        self._h2.ping(_PING_DRAIN)
        self.flush()

    # -- frames out --------------------------------------------------------------
    def flush(self) -> None:
        """Write what h2 has framed (at the end of a read, or of a loop iteration)."""
        self._flush_due = False
        data = self._h2.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def flush_out(self) -> None:
        """The server's end-of-iteration flush (``Server.schedule_flush``)."""
        self.flush()

    def _flush_soon(self) -> None:
        if not self._receiving and not self._flush_due:
            self._flush_due = True
            self._server.schedule_flush(self)

    def _write_goaway(self, last_stream_id: int, code: int) -> None:
        frame = GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = code
        self.flush()  # what h2 framed before it goes first
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame.serialize())

    def send_fields(self, stream: Http2Stream, fields: list[tuple[str, str]], end: bool) -> None:
        self._h2.send_headers(stream.id, fields, end_stream=end)
        self._flush_soon()
        if end:
            self._stream_done(stream)

    def send_data(self, stream: Http2Stream, data: bytes, end: bool) -> None:
        """Frame as much of *data* as the windows allow (the last frame ending the
        stream when *end*); hold the rest on *stream*."""
        conn = self._h2
        stream_id = stream.id
        window = conn.local_flow_control_window(stream_id)
        size = conn.max_outbound_frame_size
        n = len(data)
        if n <= window and n <= size:  # the common case: one frame
            conn.send_data(stream_id, data, end_stream=end)
            self._flush_soon()
            return
        view = memoryview(data)
        sent = 0
        while sent < n and window > 0:
            piece = min(size, window, n - sent)
            sent += piece
            conn.send_data(stream_id, view[sent - piece : sent], end_stream=end and sent == n)
            window -= piece
        if sent < n:
            stream.hold(view[sent:])
            if not stream.blocked_since:
                stream.blocked_since = self._server.now or 1.0
        self._flush_soon()

    def end_stream(self, stream: Http2Stream) -> None:
        self._h2.end_stream(stream.id)
        self._flush_soon()
        self._stream_done(stream)

    def reset_stream(self, stream: Http2Stream, code: int) -> None:
        if not stream.reset:
            stream.lost(ConnectionResetError("stream reset"))
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.id, code)
            self._flush_soon()
        self._stream_done(stream)

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and self.transport is not None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.acknowledge_received_data(size, stream_id)
            self._flush_soon()

    def _flush_pending(self, stream: Http2Stream) -> None:
        """Send what *stream* held back, as far as the windows now allow."""
        conn = self._h2
        while stream.pending and not stream.reset:
            window = min(conn.local_flow_control_window(stream.id), conn.max_outbound_frame_size)
            if window <= 0:
                return
            data, end = stream.take_pending(window)
            conn.send_data(stream.id, data, end_stream=end)
            if end:
                self._stream_done(stream)
        stream.blocked_since = 0.0
        stream.wake()
        self.forget(stream)

    # -- streams ---------------------------------------------------------------
    def _stream_done(self, stream: Http2Stream) -> None:
        """The response on *stream* has all been handed to h2 (or the stream reset)."""
        if stream.body is not None and not stream.reset:
            # Answered before its body ended: the rest is not wanted (RFC 9113 §8.1).
            stream.body_failed(ClientDisconnectedError("stream answered"))
            stream.reset = True
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.id, ErrorCodes.NO_ERROR)

    def forget(self, stream: Http2Stream) -> None:
        """Drop *stream* once its handler is done (a reset stream's may run on till
        then) and its response has left (bytes may wait for the peer's window)."""
        if not stream.done or (stream.pending and not stream.reset):
            return
        if self._streams.pop(stream.id, None) is not None and not self._streams:
            self._idle_since = self._server.now
            if self._drain is _LAST_FIXED or self._client_goaway:
                self.close()

    def _request_received(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        self._any_request = True
        if self._drain is _LAST_FIXED and stream_id > self._last_stream:
            self._refuse_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if len(self._streams) >= self.opts.http2_max_concurrent_streams:
            # Streams reset by the client whose handlers still run count here: a
            # rapid reset cannot start more handlers than the limit.
            self._count_reset(stream_id)
            self._refuse_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        stream = Http2Stream(self, stream_id)
        try:
            request = self._make_request(stream, event)
        except Malformed as exc:
            self._server.logger.debug(
                "malformed HTTP/2 request from %s on stream %d: %s", self.peer, stream_id, exc
            )
            self._refuse_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        except WireError as err:
            self._server.logger.debug(
                "bad HTTP/2 request from %s on stream %d: %s %s",
                self.peer,
                stream_id,
                err.status,
                err.detail,
            )
            self._streams[stream_id] = stream
            self._answer_error(stream, err)
            stream.done = True
            self.forget(stream)
            return
        self._streams[stream_id] = stream
        stream.request = request
        if event.stream_ended is not None:
            stream.body_ended()
        self._run(stream, request)

    def _make_request(self, stream: Http2Stream, event: h2.events.RequestReceived) -> BaseRequest:
        """The request its HEADERS describe; :class:`Malformed` (RFC 9113 §8.1.1) or
        :class:`~lowserve.wire.errors.WireError` (a bound, answered) when refused.

        The fields are checked here, in the one pass that reads them (h2's own
        validation is off: it cost about a tenth of a request's time): names are
        lower-case tokens, values have no CR, LF, NUL nor outer whitespace, no
        connection-specific field, pseudo-fields known, single and first.
        """
        opts = self.opts
        method = path = authority = scheme = None
        fields: list[tuple[bytes, bytes]] = []
        special: dict[bytes, bytes] = {}
        cookies: list[bytes] = []
        max_field = opts.max_field_size
        good_names = _GOOD_NAMES
        bad_value = _BAD_VALUE.search
        for name, value in event.headers:  # bytes: header_encoding is None
            if name[:1] == b":":
                if fields or cookies:
                    raise Malformed("pseudo-header field after a regular one")
                if name == b":method" and method is None:
                    method = value
                elif name == b":path" and path is None:
                    path = value
                elif name == b":authority" and authority is None:
                    authority = value
                elif name == b":scheme" and scheme is None:
                    scheme = value
                else:
                    raise Malformed(f"unknown or repeated pseudo-header {name!r}")
                continue
            if name not in good_names:
                if _NAME.fullmatch(name) is None:
                    raise Malformed(f"invalid field name {name[:64]!r}")
                if len(good_names) < 512:
                    good_names.add(name)
            if value and bad_value(value) is not None:
                raise Malformed(f"invalid value of {name[:64]!r}")
            if name in _CONNECTION_SPECIFIC and (name != b"te" or value != b"trailers"):
                raise Malformed(f"connection-specific field {name!r}")
            if len(name) > max_field or len(value) > max_field:
                raise WireError(431, "header field too long")
            if name == b"cookie":
                cookies.append(value)
                continue
            if name == b"host":
                if authority is None:
                    authority = value
                continue
            if name in _SPECIAL:
                if name in special and name in _SINGLETONS:
                    raise WireError(400, f"duplicate {name.decode('latin-1')} header")
                special[name] = value
            fields.append((name, value))
        if method is None:
            raise Malformed("no :method")
        if method == b"CONNECT":
            if authority is None or path is not None or scheme is not None:
                raise Malformed("CONNECT takes :authority only")
        elif not path or scheme is None:
            raise Malformed("no :path or :scheme")
        if len(fields) + len(cookies) > opts.max_headers:
            raise WireError(431, "too many header fields")
        if cookies:
            fields.append((b"cookie", b"; ".join(cookies)))  # RFC 9113 §8.2.3
        if authority is not None:
            fields.insert(0, (b"host", authority))
        method_s = method.decode("ascii", "surrogateescape")
        target = (path or (authority if method == b"CONNECT" else b"") or b"").decode(
            "utf-8", "surrogateescape"
        )
        if len(target) > opts.max_line_size:
            raise WireError(414, "request target too long")
        expect = special.get(b"expect")
        if expect is not None and expect.lower() != b"100-continue":
            raise WireError(417, "unsupported expectation")
        cenc = special.get(b"content-encoding")
        if cenc is not None and opts.auto_decompress:
            coding = cenc.lower().strip()
            if coding != b"identity" and coding not in SUPPORTED_CODINGS:
                raise WireError(415, f"content coding {coding.decode('latin-1')!r} not supported")
        clen = special.get(b"content-length")
        if clen is not None and not clen.isdigit():
            raise WireError(400, "invalid Content-Length")
        if event.stream_ended is not None or clen == b"0":
            body: BodyStream = EMPTY_STREAM
        else:
            body = stream.open_body(special, opts)
        return self._server.request_factory(
            stream,
            method_s,
            target,
            HttpVersion20,
            fields,
            True,
            body,
            client_max_size=opts.client_max_size,
        )

    def _run(self, stream: Http2Stream, request: BaseRequest) -> None:
        """Run *request*'s handler on *stream* and answer it: one responder per stream
        (a handler that does not wait is answered before this returns)."""
        stream.responder.start(request)

    def _answer_error(self, stream: Http2Stream, err: WireError) -> None:
        """A refusal before any handler ran: a short text answer on the stream."""
        body = f"{err.status}: {REASONS.get(err.status, '')} ({err.detail})".encode()
        headers: dict[str, str] = {
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": str(len(body)),
        }
        framing = decide("GET", err.status, 1, True, len(body), False)
        complete_fields(
            _DictFields(headers),
            "GET",
            err.status,
            framing,
            len(body),
            self.opts.server_header,
            None,
        )
        stream.send_fields(h2_fields(err.status, headers.items()), False)
        stream.write_bytes(body)
        stream.end_body()

    def _refuse_stream(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, code)

    # -- events in ---------------------------------------------------------------
    def _data_received(self, event: h2.events.DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        data = event.data
        if not data and event.stream_ended is None:
            self._count_control("empty DATA frames")
        if stream is None or stream.reset:
            self.acknowledge(event.stream_id, event.flow_controlled_length)
            return
        stream.data_received(data, event.flow_controlled_length)
        if event.stream_ended is not None:
            stream.body_ended()

    def _stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.body_ended()

    def _stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self._streams.get(event.stream_id)
        if event.remote_reset:
            self._count_reset(event.stream_id)
        if stream is not None:
            stream.lost(ClientDisconnectedError("stream reset by the client"))
            stream.responder.lost()

    def _window_updated(self, event: h2.events.WindowUpdated) -> None:
        # Not counted as a flood: a download brings one every few frames (and h2
        # refuses a zero increment as a protocol error).
        if event.stream_id:
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.pending:
                self._flush_pending(stream)
        else:
            self._window_opened()

    def _window_opened(self) -> None:
        for stream in list(self._streams.values()):
            if stream.pending:
                self._flush_pending(stream)

    def _settings_changed(self, event: h2.events.RemoteSettingsChanged) -> None:
        self._count_control("SETTINGS frames")
        self._window_opened()  # a larger initial window opens every stream's

    def _ping_received(self, event: h2.events.PingReceived) -> None:
        self._count_control("PING frames")

    def _ping_acked(self, event: h2.events.PingAckReceived) -> None:
        if self._drain is _ANNOUNCED and event.ping_data == _PING_DRAIN:
            # A round trip since the first GOAWAY: no stream the client opened before
            # it saw that is still on its way. Fix the last one.
            self._drain = _LAST_FIXED
            self._last_stream = self._h2.highest_inbound_stream_id
            self._write_goaway(self._last_stream, ErrorCodes.NO_ERROR)
            if not self._streams:
                self.close()

    def _priority_updated(self, event: h2.events.PriorityUpdated) -> None:
        self._count_control("PRIORITY frames")

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        """The client's GOAWAY: answer the streams it opened, then close."""
        self._client_goaway = True
        if event.error_code:
            self._server.logger.debug(
                "HTTP/2 client %s sent GOAWAY %s", self.peer, _code_name(event.error_code)
            )
        if not self._streams:
            self.close()

    # -- bounds ------------------------------------------------------------------
    def _roll_window(self) -> None:
        now = self._server.now
        if now >= self._window_end:
            self._window_end = now + _FLOOD_WINDOW
            self._resets = 0
            self._control = 0

    def _count_reset(self, stream_id: int) -> None:
        self._roll_window()
        self._resets += 1
        if self._resets > self.opts.http2_max_resets:
            self._fault(
                "h2-rapid-reset",
                f"HTTP/2 streams reset faster than http2_max_resets "
                f"({self.opts.http2_max_resets} in {_FLOOD_WINDOW:g} s, CVE-2023-44487): "
                "connections closed with ENHANCE_YOUR_CALM",
                ErrorCodes.ENHANCE_YOUR_CALM,
            )

    def _count_control(self, what: str) -> None:
        self._roll_window()
        self._control += 1
        if self._control > self.opts.http2_max_control_frames:
            self._fault(
                "h2-control-flood",
                f"HTTP/2 {what} past http2_max_control_frames "
                f"({self.opts.http2_max_control_frames} in {_FLOOD_WINDOW:g} s, "
                "CVE-2019-9512/9515/9518): connections closed with ENHANCE_YOUR_CALM",
                ErrorCodes.ENHANCE_YOUR_CALM,
            )

    def _fault(self, kind: str, message: str, code: int | None) -> None:
        """A client's fault ends the connection: GOAWAY with *code* (h2 framed one
        already for a protocol error: *code* None), one DEBUG line, and *kind*
        counted by the server's rate-limited WARNING."""
        if self._closing:
            return
        self._server.logger.debug("HTTP/2 client %s: %s: closing", self.peer, message)
        if kind != "protocol":
            self._server.note_refusal(kind, message)
        if code is not None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection(code, last_stream_id=self._h2.highest_inbound_stream_id)
        self.flush()
        self.close()

    def check_timeout(self, now: float) -> None:
        """The server's sweeper, about once a second: idle, header, body and send timeouts."""
        opts = self.opts
        if self._closing:
            return
        if not self._streams:
            timeout = opts.keepalive_timeout if self._any_request else opts.header_read_timeout
            if self._drain is not _SERVING:
                timeout = min(timeout, opts.drain_grace) if timeout else opts.drain_grace
            if now - self._idle_since >= timeout:
                self.close()
            return
        blocked = self._write_blocked_since
        if blocked and opts.send_timeout and now - blocked >= opts.send_timeout:
            self._server.logger.debug(
                "HTTP/2 client %s read nothing for %.0f s: closing", self.peer, opts.send_timeout
            )
            if self.transport is not None:
                self.transport.abort()
            return
        for stream in list(self._streams.values()):
            since = stream.blocked_since
            if (
                since
                and opts.send_timeout
                and not stream.reset
                and now - since >= opts.send_timeout
            ):
                self._server.logger.debug(
                    "HTTP/2 client %s gave stream %d no window for %.0f s: reset",
                    self.peer,
                    stream.id,
                    opts.send_timeout,
                )
                self.reset_stream(stream, ErrorCodes.CANCEL)
                continue
            body = stream.body
            if body is not None and opts.body_read_timeout:
                watch = stream.body_watch
                if watch is None:
                    watch = stream.body_watch = BodyWatch()
                watch.sample(body, not body.reading_paused and not body.continue_pending, now)
                if watch.stalled_for(now) >= opts.body_read_timeout:
                    stream.body_failed(
                        RequestPayloadError("request body not received in time", 408)
                    )
        self.flush()

    def close(self) -> None:
        """Close after what was written (a final GOAWAY unless one was sent)."""
        if self._closing:
            return
        self._closing = True
        if self._drain is _SERVING and not self._client_goaway and self.transport is not None:
            self._write_goaway(self._h2.highest_inbound_stream_id, ErrorCodes.NO_ERROR)
        self.flush()
        for stream in list(self._streams.values()):
            stream.lost(ClientDisconnectedError("Connection closed"))
        if self._client_eof:
            if self.transport is not None:
                self.transport.close()
        else:
            self._carrier.close_lingering()

    def cancel(self) -> None:
        """A forced stop (the end of a graceful one): cancel every handler still
        running, each counted and logged as the server logs HTTP/1.1's."""
        server = self._server
        for stream in list(self._streams.values()):
            task = stream.task
            if task is not None and not task.done():
                request = stream.request
                if request is not None:
                    server.cancelled_count += 1
                    server.logger.warning(
                        "cancelled at shutdown: %s %s from %s (HTTP/2 stream %d)",
                        request.method,
                        request.path,
                        self.peer,
                        stream.id,
                    )
                stream.responder.cancel()


class _DictFields:
    """A plain dict as :class:`~lowserve.wire.head.Fields` (for the refusals' heads)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __setitem__(self, name: str, value: str) -> None:
        self._fields[name] = value

    def __delitem__(self, name: str) -> None:
        del self._fields[name]

    def setdefault(self, name: str, default: str) -> str:
        return self._fields.setdefault(name, default)


def _code_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return str(code)


class Malformed(Exception):
    """A request RFC 9113 §8.1.1 calls malformed: its stream is reset (PROTOCOL_ERROR)."""


#: A field name: a token, in lower case (RFC 9113 §8.2, §8.2.1).
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
#: Field names already found valid (at most 512), so that most are checked once.
_GOOD_NAMES: set[bytes] = set()
#: What a field value may not hold: CR, LF, NUL, or whitespace at either end.
_BAD_VALUE = re.compile(rb"[\r\n\x00]|^[ \t]|[ \t]$")
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
_SINGLETONS = frozenset((b"content-length", b"content-type", b"host", b"expect"))
_SPECIAL = _SINGLETONS | {b"content-encoding"}

_EVENTS: dict[type, Callable[[Http2Connection, Any], None]] = {
    h2.events.RequestReceived: Http2Connection._request_received,  # noqa: SLF001
    h2.events.DataReceived: Http2Connection._data_received,  # noqa: SLF001
    h2.events.StreamEnded: Http2Connection._stream_ended,  # noqa: SLF001
    h2.events.StreamReset: Http2Connection._stream_reset,  # noqa: SLF001
    h2.events.WindowUpdated: Http2Connection._window_updated,  # noqa: SLF001
    h2.events.RemoteSettingsChanged: Http2Connection._settings_changed,  # noqa: SLF001
    h2.events.PingReceived: Http2Connection._ping_received,  # noqa: SLF001
    h2.events.PingAckReceived: Http2Connection._ping_acked,  # noqa: SLF001
    h2.events.PriorityUpdated: Http2Connection._priority_updated,  # noqa: SLF001
    h2.events.ConnectionTerminated: Http2Connection._terminated,  # noqa: SLF001
}
