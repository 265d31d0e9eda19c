"""One HTTP/1.1 connection: I/O, keep-alive, pipelining, flow control, closing.

Requests are read by its :class:`~lowserve.conn.reader.RequestReader` (bytes in,
requests and refusals out, through :meth:`HttpProtocol.request_received` and
:meth:`HttpProtocol.refuse`), and answered by its :class:`~lowserve.conn.responder.Responder`
(this connection is its :class:`~lowserve.conn.responder.ResponderPort`).

Its states, and what moves it between them, are :class:`~lowserve.conn.state.ConnState`'s;
only :meth:`HttpProtocol.set_state` changes it, and notes when, for the one deadline
that state has (:class:`~lowserve.conn.state.Deadlines`). Beside it: which request
starts when (:class:`~lowserve.conn.pipeline.Pipeline`), its write side
(:class:`~lowserve.conn.output.Output`), how it stops carrying requests (the
keep-alive verdict, refusals and the close: :class:`~lowserve.conn.ending.Ending`),
what takes it over (:mod:`.takeover`: a WebSocket, HTTP/2, the PROXY header) and its
progress watch (:class:`~lowserve.conn.flow.ProgressWatch`).

Invariants:

* Reading is paused while the pipeline queue is full, input is held back, a body
  stream holds more than ``read_bufsize`` unread bytes, or keep-alive has ended;
  :meth:`update_reading` is the one place that pauses and resumes the transport.
* Once the connection is closed and its responder's task has ended, nothing of it
  runs again, and :meth:`_release` cuts the references its parts hold back to it: a
  closed connection is freed by reference counting, not left to the cyclic collector.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..api.connection import UpgradeReceiver
from ..api.exceptions import ClientDisconnectedError
from ..api.response import Response, StreamResponse
from ..api.streams import EMPTY_STREAM
from ..wire.errors import WireError
from ..wire.proxy import read_proxy_headers
from .ending import Ending
from .flow import ProgressWatch, WriteFlow
from .output import Output
from .pipeline import Pipeline
from .reader import RequestReader
from .responder import Responder
from .sockets import accepted, peer_name
from .state import ConnState, Deadlines, PersistEnd
from .takeover import Takeover

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from ..options import ServerOptions
    from .server import Server

__all__ = ["ConnState", "HttpProtocol"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_IDLE, _HEAD, _BUSY, _LINGER = ConnState.IDLE, ConnState.HEAD, ConnState.BUSY, ConnState.LINGER
_HELD = ConnState.HELD
# An enum member read through its class costs ~1,500 instructions on CPython 3.11
# (callgrind): the states read per request are module globals.
_DISCARD, _UPGRADED = ConnState.DISCARD, ConnState.UPGRADED
_CLOSED, _CLOSING, _REFUSING = ConnState.CLOSED, ConnState.CLOSING, ConnState.REFUSING
_PEER_CLOSED, _CUT_SHORT = PersistEnd.PEER_CLOSED, PersistEnd.CUT_SHORT
_DRAINING = PersistEnd.DRAINING


class HttpProtocol:
    """The server side of one HTTP/1.1 connection.

    An asyncio protocol that does not subclass ``asyncio.Protocol``: the compiled
    build makes it an extension type, which cannot have a Python base class, and it
    defines every method a transport calls.
    """

    __slots__ = (
        "_deadlines",
        "_ending",
        "_flow",
        "_no_reuse",
        "_opts",
        "_output",
        "_peer",
        "_pipeline",
        "_reader",
        "_responder",
        "_server",
        "_since",
        "_takeover",
        "_trust_proxy",
        "_watch",
        "bytes_in",
        "client_eof",
        "is_tls",
        "loop",
        "reading_paused",
        "served",
        "server_header",
        "state",
        "transport",
    )

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._opts: ServerOptions = server.options
        opts = server.options
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        #: The peer's address (see peer): None until connected; the transport until
        #: first asked, where that transport keeps it (uvloop's TCP transport).
        self._peer: Any = None
        #: Where the connection is; only ``set_state`` changes it.
        self.state = ConnState.IDLE
        #: Runs each request's handler and answers it (this is its port).
        self._responder = Responder(server, loop, self)
        #: Bytes in, requests and refusals out (to request_received and refuse).
        self._reader = RequestReader(self, opts, server.request_factory)
        #: Proxy headers from this peer are believed (set once connected).
        self._trust_proxy = False
        #: What takes the connection over, or an upgrade request not yet answered
        #: (None for plain HTTP/1.1; see _takeover_slot).
        self._takeover: Takeover | None = None
        self.is_tls = False
        self.client_eof = False
        self.server_header = opts.server_header
        #: When the state began (the server's coarse clock), and each state's timeout:
        #: the server's, shared by its connections until this one drains (begin_shutdown).
        self._since = 0.0
        self._deadlines: Deadlines = server.deadlines
        #: keepalive_timeout=0, as aiohttp: every answer closes its connection.
        self._no_reuse = not opts.keepalive_timeout
        #: Reading is paused (see update_reading).
        self.reading_paused = False
        #: Writing's pause and drain; the progress watch the sweeps consult is made
        #: when a sweep first finds a body arriving or writing paused (_watch_slot).
        self._flow = WriteFlow()
        self._watch: ProgressWatch | None = None
        #: What the answers are written through.
        self._output = Output(self, server)
        #: The keep-alive verdict, the refusal being answered, the close: made when
        #: the connection starts to end (_ending_slot); an idle one holds none.
        self._ending: Ending | None = None
        #: Which request starts when; what waits.
        self._pipeline = Pipeline(self, opts, self._reader, self._responder, self._flow)
        #: For --metrics (C integers, compiled: an addition each): bytes read (whatever
        #: took the connection over included) and requests answered; see traffic().
        self.bytes_in = self.served = 0

    def __repr__(self) -> str:
        return f"<HttpProtocol {self.peer} {self.state.value}>"

    @property
    def peer(self) -> str | None:
        """The peer's address (``request.remote``, log lines), named when first asked
        on uvloop's TCP transport (:mod:`~lowserve.conn.sockets`)."""
        peer = self._peer
        if type(peer) is str:
            return peer
        name = self._peer = peer_name(peer)
        return name

    @peer.setter
    def peer(self, value: str | None) -> None:
        self._peer = value

    # -- state ----------------------------------------------------------------
    def set_state(self, state: ConnState) -> None:
        """The one place the connection state changes; notes when, from the server's
        coarse clock (advanced by its sweeper: no clock read), so that the sweeper can
        judge the state's deadline (:class:`~lowserve.conn.state.Deadlines`)."""
        self.state = state
        if state is not _BUSY:  # BUSY waits on the handler: no deadline (a read less)
            self._since = self._server.now

    def check_timeout(self, now: float) -> None:
        """Called by the server's sweeper about every second (sooner for short timeouts)."""
        takeover = self._takeover
        if self.state is _UPGRADED and takeover is not None and takeover.check_timeout(now):
            return
        if self._reader.body is not None or self._flow.paused:
            body = self._reader.body
            reading = body is not None and not self.reading_paused and not body.continue_pending
            watch = self._watch
            if watch is None:
                watch = self._watch = ProgressWatch(self._server, self._flow)
            ending = self._ending
            refusing = ending is None or ending.error is None  # no refusal owed yet
            err = watch.check(now, body, reading, self.transport, self.peer, refusing)
            if err is not None:
                self._ending_slot().refuse(err)
        deadline = self._deadlines.deadline(self.state, self._since)
        if deadline and now >= deadline:
            self._ending_slot().timed_out(self.state)

    # -- asyncio.Protocol -----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # an asyncio.Transport: no typing.cast, a Python call per connection
        self.transport = transport  # type: ignore[assignment]
        opts = self._opts
        fd, self._peer, self.is_tls = accepted(transport, opts.tcp_keepalive)
        self._trust_proxy = opts.proxy_headers and self.peer in self._server.trusted_proxies
        if not self._server.connection_made(self, fd):
            # Over capacity. Its descriptor must be free again soon: answer 503 as
            # soon as the request is read, and close at once (nothing is left unread).
            self._ending_slot().over_capacity()
            self.set_state(_REFUSING)
            return
        self.set_state(_IDLE)
        if self.is_tls and opts.http2:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._takeover_slot().start_http2(b"")
                return
        if opts.proxy_protocol:
            if not self._takeover_slot().read_proxy_header():
                return
            self.set_state(_HEAD)  # the header-read timeout runs
        if self._server.shutting_down:
            self.begin_shutdown()  # accepted as the listener closed: answer once, then close

    def connection_lost(self, exc: BaseException | None) -> None:
        self.set_state(_CLOSED)
        self._server.connection_lost(self)
        self._pipeline.lost()
        if self._takeover is not None:
            self._takeover.connection_lost(exc)
        self._responder.lost()
        self.transport = None
        if self._responder.task is None:  # else once its task ends (finished)
            self._release()

    def eof_received(self) -> bool | None:
        self.client_eof = True
        if self._takeover is not None and self._takeover.eof_received():
            return True
        # An answer queued for the end of this loop iteration leaves before the
        # transport closes on our return.
        self._output.flush_out()
        body = self._reader.body
        if body is not None and not body.is_eof():
            body.set_exception(ClientDisconnectedError("Connection lost"))
        if (self.state is _BUSY or self.state is _HELD) and not self._opts.handler_cancellation:
            # A half-closed client still gets its answers; then the connection closes.
            # (With handler_cancellation, EOF counts as a disconnect, as in aiohttp.)
            self._ending_slot().end(_PEER_CLOSED)
            return True
        return None

    def pause_writing(self) -> None:
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        self._flow.pause(buffered, self._server.now)
        if self._takeover is not None:
            self._takeover.pause_writing()

    def resume_writing(self) -> None:
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        self._flow.resume(buffered, self._server.now)
        if self._takeover is not None and self._takeover.resume_writing():
            return
        if self.state is _HELD:
            self._pipeline.advance()  # the peer reads again: the requests it sent are answered

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        takeover = self._takeover
        if takeover is not None and takeover.data_received(data):
            return
        ending = self._ending
        if ending is not None and ending.error is not None:
            if self.state is _REFUSING:
                ending.refuse_now()
            return
        if self.state is _CLOSED:
            return
        pipeline = self._pipeline
        if pipeline.unparsed is not None:
            pipeline.hold_back(data)
            return
        if pipeline.fits(data):
            # _parse, inline: one call less per read (about 1% of a hello request's
            # instructions, measured with callgrind).
            reader = self._reader
            tail = reader.feed(data)
            if tail is not None:
                self._stopped_at_upgrade(tail)
            elif reader.in_head and self.state is _IDLE:
                self.set_state(_HEAD)
            if pipeline.deferred is not None:
                pipeline.start_deferred()
        else:
            pipeline.feed(data)

    def feed(self, data: bytes) -> None:
        """Feed input in slices that keep the pipeline queue's bound (the takeover's
        held bytes, once an upgrade is declined): :meth:`Pipeline.feed`."""
        self._pipeline.feed(data)

    def parse(self, data: bytes | memoryview) -> bool:
        """Hand *data* to the reader (data_received does the same, inline); False once
        nothing more is to be parsed now (a refusal, the transport gone, an upgrade head
        waiting for its handler, or the connection taken over)."""
        reader = self._reader
        tail = reader.feed(data)
        if tail is not None:
            self._stopped_at_upgrade(tail)
        elif reader.in_head and self.state is _IDLE:
            self.set_state(_HEAD)  # a head is still arriving: its timeout runs
        takeover = self._takeover
        ending = self._ending
        return (
            (ending is None or ending.error is None)
            and self.transport is not None
            and (takeover is None or (takeover.tail is None and takeover.receiver is None))
        )

    def parse_stopped(self, rest: bytes) -> None:
        """What followed where :meth:`parse` stopped: the takeover's (its receiver's, or
        held behind an upgrade head); after a refusal or a close, nobody's."""
        if self._takeover is not None:
            self._takeover.data_received(rest)

    def _stopped_at_upgrade(self, tail: bytes | memoryview) -> None:
        """llhttp stopped after an upgrade head (or HTTP/2's preface): the takeover
        decides what *tail*, what followed it, is."""
        takeover = self._takeover_slot()
        takeover.stopped(tail)
        if takeover is self._takeover and takeover.idle:
            self._takeover = None

    def _takeover_slot(self) -> Takeover:
        """The connection's :class:`~lowserve.conn.takeover.Takeover`, made on first need."""
        takeover = self._takeover
        if takeover is None:
            takeover = self._takeover = Takeover(self, self._server, self._reader)
        return takeover

    def _ending_slot(self) -> Ending:
        """The connection's :class:`~lowserve.conn.ending.Ending`, made when it starts
        to end (a refusal, a timeout, a close, a drain); the pipeline is told of it."""
        ending = self._ending
        if ending is None:
            ending = self._ending = Ending(self, self._server, self._reader, self._output)
            self._pipeline.ending = ending
        return ending

    # -- what the reader delivers (ReaderSink) --------------------------------
    def upgrade_received(self, request: BaseRequest) -> None:
        """An upgrade request: llhttp stopped after it (see _stopped_at_upgrade)."""
        self._takeover_slot().expect(request)
        self.request_received(request, False)

    def request_received(self, request: BaseRequest, after: bool) -> None:
        """Answer *request* now, or queue it behind the one in flight (or held)."""
        if self._trust_proxy:
            request.set_forwarded(*read_proxy_headers(request.raw_headers))
        self._pipeline.received(request, after, self.state)

    def body_complete(self) -> None:
        """A body has all arrived: its request starts if it waits for that."""
        self._pipeline.start_deferred()

    def body_dropped(self) -> None:
        if self.state is _LINGER:
            self._pipeline.advance()

    def refuse(self, err: WireError) -> None:
        self._server.count_refusal(str(err.status))  # --metrics: refusals by status
        self._ending_slot().refuse(err)

    # -- what the responder uses (ResponderPort) -----------------------------
    def send_whole(self, request: BaseRequest, resp: Response) -> bool:
        """Send a response whose body is in memory, at the end of this loop iteration."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        self._output.queue(resp.render_bytes(request))
        return True

    def is_open(self) -> bool:
        """Whether the peer can still be written to."""
        transport = self.transport
        return transport is not None and not transport.is_closing()

    def finished(self) -> None:
        """The responder's task has ended: once closed, nothing of the connection runs."""
        if self.state is _CLOSED:
            self._release()

    def _release(self) -> None:
        """Cut the references the connection's parts hold back to it, and drop its
        ending and takeover, once it is closed and its responder's task has ended.

        The parts and the connection refer to one another, and the reader and
        httptools' parser do too (the parser keeps the reader's callbacks): left whole,
        each closed connection was ~20 objects in reference cycles, freed only by the
        cyclic collector, whose older generations then walked them (bench/PROFILE.md,
        round 11). Cut, the connection is freed by reference counting as its last
        reference goes. Nothing calls into the parts afterwards: no bytes arrive after
        ``connection_lost``, and no handler runs once the task has ended.
        """
        self._responder.release()
        self._reader.release()
        self._pipeline.release()
        self._output.release()
        self._ending = None
        self._takeover = None

    def stopped(self) -> bool:
        """No request will come any more (closing, closed, or taken over)."""
        state = self.state
        return state is _CLOSING or state is _CLOSED or state is _UPGRADED

    def answered(self, request: BaseRequest, keep_alive: bool | None) -> None:
        """*request* is answered: start the next one, linger over an unread body, or close."""
        self.served += 1
        if request.content is not EMPTY_STREAM:
            request.finish()  # closes the files post() spooled (they need a body)
        takeover = self._takeover
        if takeover is not None and request is takeover.request:
            tail = takeover.answered()
            if tail:
                self._pipeline.hold_back(tail)  # HTTP again: parsed once this answer is done
            if takeover.idle:
                self._takeover = None
        if self.state is _UPGRADED:
            return
        if not keep_alive or self.transport is None:
            self.close()
            return
        body = request.content
        if body is not EMPTY_STREAM and not body.is_eof():
            # Discard the rest of the unread body so the next request can be parsed.
            body.discard()
            self._reader.drop_body()
            self.set_state(_LINGER)
            self.update_reading()
            return
        self._pipeline.advance()

    # -- what the ending uses (EndingPort) -----------------------------------
    def queue_refusal(self, err: WireError) -> bool:
        """Queue the refusal *err* behind the answers still owed; False when none is."""
        return self._pipeline.queue_refusal(err)

    def lingering(self) -> None:
        """FIN is sent: read and drop what the client still sends."""
        self.set_state(_DISCARD)
        self.update_reading(body_full=False)

    def closing(self) -> None:
        """The transport is closing."""
        self.set_state(_CLOSING)

    # -- flow control ---------------------------------------------------------
    def pause_for_body(self, paused: bool) -> None:
        """A body stream's buffer crossed its high (True) or low (False) water mark."""
        self.update_reading(body_full=paused)

    def pause_reading(self) -> None:
        """What took the connection over (a WebSocket) holds its input: its queue is full."""
        self._takeover_slot().hold(True)
        self.update_reading()

    def resume_reading(self) -> None:
        """What took the connection over takes input again."""
        self._takeover_slot().hold(False)
        self.update_reading()

    def update_reading(self, body_full: bool | None = None) -> None:
        """The one place that pauses and resumes reading from the socket."""
        transport = self.transport
        if transport is None:
            return
        state = self.state
        if state is _DISCARD:
            want_pause = False  # read and drop until the client closes
        elif state is _UPGRADED:
            # the receiver alone decides
            want_pause = self._takeover is not None and self._takeover.paused
        else:
            want_pause = self._pipeline.input_waits(body_full)
        if want_pause and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()
        elif not want_pause and self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    @property
    def client_max_fields(self) -> int:
        """The most form fields ``post()`` accepts (0: no limit)."""
        return self._opts.client_max_fields

    @property
    def write_paused(self) -> bool:
        """True while the transport's write buffer is over its high-water mark."""
        return self._flow.paused

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self.transport is None or self.transport.is_closing():
            raise ClientDisconnectedError("Cannot write to closing transport")
        if self._flow.paused:
            await self._flow.wait(self.loop)

    def write_bytes(self, data: bytes) -> None:
        self._output.write(data)

    # -- hooks used by responses and the request body -----------------------
    def response_started(self, resp: StreamResponse) -> None:
        self._responder.head_sent = True

    def may_keep_alive(self, request: BaseRequest) -> bool:
        """False when the connection cannot carry another request after this one."""
        if self._no_reuse:
            return False
        ending = self._ending
        if ending is not None and ending.persist_end is not None and not self._pipeline.queue:
            return False
        # A client still holding its body back (100-continue) cannot be drained.
        body = request.content
        return body is EMPTY_STREAM or not body.continue_pending or body.is_eof()

    def body_cut_short(self) -> None:
        """A response ended before its declared Content-Length: close after it."""
        self._ending_slot().end(_CUT_SHORT)

    def send_continue(self) -> None:
        """Send ``100 Continue``: the handler reads a body the client holds back."""
        if not self._responder.head_sent:
            self._output.send(_CONTINUE)

    # -- what the takeover uses (TakeoverPort) --------------------------------
    def proxied(self, client: str | None, rest: bytes) -> None:
        """The PROXY header is in: *client* (if it names one) is the peer now; HTTP
        follows, beginning with *rest*."""
        self._takeover = None
        if client is not None:
            self.peer = client
        self.set_state(_IDLE)
        if rest:
            self.data_received(rest)

    def handed_over(self) -> None:
        """What is in the upgrade slot reads the connection from now on."""
        self.set_state(_UPGRADED)
        self.update_reading(body_full=False)

    def traffic(self) -> tuple[int, int, int, int, int]:
        """For --metrics, this connection's counts so far: bytes read, bytes written
        (by what took it over too), requests answered (HTTP/2's streams included),
        messages received and sent by what took it over (a WebSocket)."""
        takeover = self._takeover
        written, received, sent, answered = (0, 0, 0, 0) if takeover is None else takeover.traffic()
        return (
            self.bytes_in,
            self._output.written + written,
            self.served + answered,
            received,
            sent,
        )

    def take_over(self, receiver: UpgradeReceiver) -> bytes:
        """Hand the transport to *receiver*; returns bytes already read past the head."""
        self._responder.head_sent = True
        self._server.websockets_opened += 1  # --metrics (a WebSocket is what takes over)
        tail = self._takeover_slot().take(receiver)
        self.handed_over()
        return tail

    def abort(self) -> None:
        """Drop the connection at once (a PROXY header refused)."""
        self.set_state(_CLOSING)
        if self.transport is not None:
            self.transport.abort()

    # -- closing --------------------------------------------------------------
    def close_lingering(self) -> None:
        """Close as after a refusal: FIN, then the client's bytes still in flight are
        read and dropped (:meth:`~lowserve.conn.ending.Ending.close_lingering`)."""
        self._ending_slot().close_lingering()

    def begin_shutdown(self) -> None:
        """Drain: answer what is owed and what arrives soon, each with ``Connection: close``.

        The server is shutting down, so :meth:`may_keep_alive` says no from now on:
        the next response this connection sends closes it. A connection idle now (or
        again after a response that had already promised keep-alive) stays open for
        ``drain_grace`` seconds (:class:`~lowserve.conn.state.Deadlines`), because its
        client may have a request on the way; a head arriving now gets that long. Only
        connections still idle then are closed, so no request that was sent is lost.
        """
        ending = self._ending_slot()
        if ending.persist_end is not None:
            return  # draining already, or no more requests will be read anyway
        ending.end(_DRAINING)
        self._deadlines = self._deadlines.draining(self._server.now, self._opts.drain_grace)
        if self.state is _UPGRADED and self._takeover is not None:
            self._takeover.shutdown()
        # BUSY and LINGER: the response in progress says Connection: close if its head
        # has not left yet; otherwise the connection returns to IDLE, with the grace.

    @property
    def current_request(self) -> BaseRequest | None:
        """The request being answered, if any."""
        return self._responder.request

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs this connection's handlers (``request.task``)."""
        return self._responder.task

    def cancel(self) -> None:
        """Forced stop: cancel the handler and drop the connection."""
        self._responder.cancel()
        if self._takeover is not None:
            self._takeover.cancel()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close after the bytes already written have been sent (lingering after a
        refusal: :meth:`~lowserve.conn.ending.Ending.close`)."""
        self._ending_slot().close()
