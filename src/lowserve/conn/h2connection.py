"""HTTP/2: one connection's frames, its streams, their flow control and its bounds.

A connection becomes HTTP/2 in one of two ways, both decided by
:class:`~lowserve.conn.protocol.HttpProtocol` before any HTTP/1.1 request runs:
by TLS ALPN (``h2``), or by the client's prior knowledge (the connection preface
``PRI * HTTP/2.0``, at which llhttp stops as it stops at an upgrade). Either
way the transport is handed to an :class:`Http2Connection` through the upgrade slot
(:mod:`.takeover`), as a WebSocket takes it over. Frames and HPACK are python-hyper's
``h2`` (sans-I/O, set up by :mod:`.h2library`); this module is the glue: requests for
the handler, responses as frames, flow control, timeouts, the drain and the bounds.

Each stream is an :class:`~lowserve.conn.h2stream.Http2Stream` (:mod:`.h2stream`): the
``request.protocol`` of its request and what its handler's answer is sent through;
its request is made from its HEADERS by :mod:`.h2request`. Handlers run
concurrently, one per stream.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from ..api.exceptions import ClientDisconnectedError
from ..wire.errors import WireError
from .flow import FloodWatch
from .h2library import server_connection
from .h2request import Malformed, answer_error, make_request
from .h2stream import Http2Stream

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from .server import Server

__all__ = ["PREFACE", "Carrier", "Drain", "Http2Connection"]

#: The client's connection preface (RFC 9113 §3.4), which llhttp checks and stops after.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_MAX_STREAM_ID = 2**31 - 1
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


class Carrier(Protocol):
    """What an :class:`Http2Connection` needs from the connection that handed it the
    transport (:class:`~lowserve.conn.protocol.HttpProtocol`)."""

    loop: asyncio.AbstractEventLoop

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close_lingering(self) -> None: ...


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
        self._window = max(65535, opts.read_bufsize)
        self._h2 = server_connection(opts, self._window, _CONN_WINDOW)
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
        #: Bytes written to the transport, and streams answered (--metrics).
        self._written = 0
        self.answered = 0
        self._floods = FloodWatch(server.now)
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

    def traffic(self) -> tuple[int, int, int, int]:
        """For --metrics: bytes written, and streams answered (each stream's request
        is counted by method and status as any other)."""
        return (self._written, 0, 0, self.answered)

    # -- frames out --------------------------------------------------------------
    def flush(self) -> None:
        """Write what h2 has framed (at the end of a read, or of a loop iteration)."""
        self._flush_due = False
        data = self._h2.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            self._written += len(data)
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
            data = frame.serialize()
            self._written += len(data)
            transport.write(data)

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
            request = make_request(stream, event, self._server)
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
            answer_error(stream, err, self.opts.server_header)
            stream.done = True
            self.forget(stream)
            return
        self._streams[stream_id] = stream
        stream.request = request
        if event.stream_ended is not None:
            stream.body_ended()
        self._run(stream, request)

    def _run(self, stream: Http2Stream, request: BaseRequest) -> None:
        """Run *request*'s handler on *stream* and answer it: one responder per stream
        (a handler that does not wait is answered before this returns)."""
        stream.responder.start(request)

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
    def _count_reset(self, stream_id: int) -> None:
        bound = self.opts.http2_max_resets
        if self._floods.reset_floods(self._server.now, bound):
            self._fault(
                "h2-rapid-reset",
                f"HTTP/2 streams reset faster than http2_max_resets ({bound} in "
                f"{FloodWatch.WINDOW:g} s, CVE-2023-44487): connections closed with "
                "ENHANCE_YOUR_CALM",
                ErrorCodes.ENHANCE_YOUR_CALM,
            )

    def _count_control(self, what: str) -> None:
        bound = self.opts.http2_max_control_frames
        if self._floods.control_floods(self._server.now, bound):
            self._fault(
                "h2-control-flood",
                f"HTTP/2 {what} past http2_max_control_frames ({bound} in "
                f"{FloodWatch.WINDOW:g} s, CVE-2019-9512/9515/9518): connections closed "
                "with ENHANCE_YOUR_CALM",
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
            stream.sweep(now)
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


def _code_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return str(code)


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
