"""The pipeline of one HTTP/1.1 connection: which request starts when.

A client may send requests without waiting for their answers. The connection
answers one at a time, in the order they arrived; its :class:`Pipeline` starts each
(through the :class:`~lowserve.conn.responder.Responder`) and keeps what waits: the
requests (and a refusal behind them) read while an earlier one is answered, the
input held back while that queue is full, and the request that starts once the
segment carrying its body has been read.

The connection's state changes only in ``HttpProtocol.set_state``; the pipeline calls
it at the moves it decides (BUSY, HELD, and back to IDLE or HEAD).

Invariants:

* Requests are answered in the order they arrived. While a handler runs, the
  reader keeps reading: later requests wait in ``queue`` (at most ``max_pipeline``;
  past that, reading pauses).
* While writing is paused (the peer is not reading), no request is started: the
  connection is HELD and later requests queue, so a client that pipelines and
  never reads costs the write buffer's high-water mark plus one response, not a
  response per request. ``send_timeout`` and ``min_send_rate`` bound the wait.
* llhttp parses all it is given, so the queue's bound is kept by giving it no more
  heads than there is room for (:meth:`Pipeline.feed`, in slices the reader cuts);
  the rest waits in ``unparsed``, with reading paused, until the queue drains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..api.exceptions import ClientDisconnectedError
from ..wire.errors import WireError
from .reader import LONG_READ
from .state import ConnState, PersistEnd

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from ..options import ServerOptions
    from .ending import Ending
    from .flow import WriteFlow
    from .reader import RequestReader
    from .responder import Responder

__all__ = ["Pipeline", "PipelinePort"]

_IDLE, _HEAD, _BUSY, _HELD = ConnState.IDLE, ConnState.HEAD, ConnState.BUSY, ConnState.HELD
_DRAINING = PersistEnd.DRAINING


class PipelinePort(Protocol):
    """The connection a :class:`Pipeline` belongs to."""

    state: ConnState
    #: Reading from the socket is paused.
    reading_paused: bool

    def set_state(self, state: ConnState) -> None: ...
    def parse(self, data: bytes | memoryview) -> bool: ...
    def parse_stopped(self, rest: bytes) -> None: ...
    def update_reading(self, body_full: bool | None = None) -> None: ...
    def close(self) -> None: ...


class Pipeline:
    """The requests of one connection, started in order (see the module docstring)."""

    __slots__ = (
        "_conn",
        "_flow",
        "_limit",
        "_reader",
        "_responder",
        "deferred",
        "ending",
        "queue",
        "unparsed",
    )

    def __init__(
        self,
        conn: PipelinePort,
        opts: ServerOptions,
        reader: RequestReader,
        responder: Responder,
        flow: WriteFlow,
    ) -> None:
        self._conn = conn
        self._reader = reader
        self._responder = responder
        self._flow = flow
        #: The connection's Ending, once it has begun to end (None until then: the
        #: connection makes it, and sets it here).
        self.ending: Ending | None = None
        self._limit = opts.max_pipeline
        #: Requests (or refusals) waiting behind the one being answered, at most
        #: ``max_pipeline``. A list: an empty deque holds 760 bytes, an empty list 56,
        #: on every idle connection; pop(0) moves at most max_pipeline pointers.
        self.queue: list[BaseRequest | WireError] = []
        #: Input held back while the queue is full (or an upgrade was declined).
        self.unparsed: bytearray | None = None
        #: A request whose body was still arriving when its segment ended.
        self.deferred: BaseRequest | None = None

    def received(self, request: BaseRequest, after: bool, state: ConnState) -> None:
        """Answer *request* now, or queue it behind the one in flight (or held); the
        connection is in *state* (passed in: a read of it less, compiled)."""
        conn = self._conn
        if state is _BUSY or state is _HELD:
            self.queue.append(request)
            if len(self.queue) >= self._limit:
                conn.update_reading()
        elif self._flow.paused:
            self._hold(request)
        elif after:
            conn.set_state(_BUSY)  # started once this segment is read (start_deferred)
            self.deferred = request
        else:
            conn.set_state(_BUSY)
            self._responder.start(request)

    def queue_refusal(self, err: WireError) -> bool:
        """Queue the refusal *err* behind the answers still owed; False when none is."""
        state = self._conn.state
        if state is not _BUSY and state is not _HELD:
            return False
        self.queue.append(err)
        self._conn.update_reading()
        return True

    def _hold(self, request: BaseRequest) -> None:
        """Keep *request* for later: the peer is not reading what was sent (HELD).

        Answering it now would add a response to a write buffer that is already over
        its high-water mark: a client that pipelines and never reads would grow this
        process's memory by a response per request. ``resume_writing`` starts it.
        """
        self.queue.append(request)
        self._conn.set_state(_HELD)

    def start_deferred(self) -> None:
        """Start the request whose body was still arriving when its segment ended
        (the reader's word that a body has all arrived: read() then does not wait)."""
        deferred = self.deferred
        if deferred is not None:
            self.deferred = None
            if self._flow.paused:
                self._hold(deferred)
            else:
                self._conn.set_state(_BUSY)
                self._responder.start(deferred)

    def advance(self) -> None:
        """After an answer: start the next request queued, or wait for one.

        While the peer is not reading (writing paused) nothing more is started: the
        connection is HELD until ``resume_writing`` calls this again, so the write
        buffer holds at most one response past its high-water mark.
        """
        conn = self._conn
        if self.queue:
            if self._flow.paused:
                conn.set_state(_HELD)
                return
            item = self.queue.pop(0)
            if isinstance(item, WireError):
                # queued by the connection's Ending (queue_refusal): it exists
                ending = self.ending
                assert ending is not None
                ending.reply(item)
                return
            conn.set_state(_BUSY)
            self._responder.start(item)
        elif (
            (ending := self.ending) is not None
            and (end := ending.persist_end) is not None
            and end is not _DRAINING
        ):
            conn.close()
            return
        else:
            conn.set_state(_HEAD if self._reader.in_head else _IDLE)
        unparsed = self.unparsed
        if unparsed is not None:
            self.unparsed = None  # read the bytes held back while the queue was full
            self.feed(bytes(unparsed))
        if conn.reading_paused:
            conn.update_reading()

    def fits(self, data: bytes) -> bool:
        """Whether *data* can be parsed whole at once: the requests it can complete fit
        in the queue. Every head ends with an empty line, so at most one request more
        than the empty lines in it can complete. Body bytes still due are not searched
        (scanning an upload costs more than parsing it), and a long read that begins a
        request (no head under way) is not searched at all: :meth:`feed` parses its head
        first, as :meth:`~lowserve.conn.reader.RequestReader.slice_end` cuts it."""
        reader = self._reader
        left = reader.body_left
        if left == 0:
            if len(data) > LONG_READ and not reader.in_head:
                return False
            heads = data.count(b"\r\n\r\n")
        elif left >= len(data):
            return True
        else:
            heads = data.count(b"\r\n\r\n", left if left > 0 else 0)
        return heads + len(self.queue) < self._limit

    def feed(self, data: bytes) -> None:
        """Feed pipelined bytes no faster than the queue has room for them (in slices
        the reader cuts: :meth:`~lowserve.conn.reader.RequestReader.slice_end`). Once
        the queue is full the rest waits in ``unparsed`` (and reading pauses) until it
        drains. Where parsing stops (a refusal, the transport gone, an upgrade head
        waiting, the connection taken over), the rest goes to the connection's
        ``parse_stopped``: past an upgrade head it is the takeover's."""
        limit = self._limit
        pos, n = 0, len(data)
        while pos < n:
            room = limit - len(self.queue)
            if room <= 0 or self.unparsed is not None:  # held back by a feed within parse
                self.hold_back(data[pos:])
                self._conn.update_reading()
                break
            end = self._reader.slice_end(data, pos, room)
            if pos == 0 and end == n:
                piece: bytes | memoryview = data
            elif end - pos <= LONG_READ:
                piece = data[pos:end]
            else:  # a long slice (a body, mostly) is a view: no copy to allocate and fill
                piece = memoryview(data)[pos:end]
            more = self._conn.parse(piece)
            pos = end
            if not more:
                if pos < n:
                    self._conn.parse_stopped(data[pos:])
                break
        self.start_deferred()

    def hold_back(self, data: bytes | bytearray) -> None:
        """Keep *data* unparsed until the requests before it are answered."""
        if self.unparsed is None:
            self.unparsed = bytearray(data)
        else:
            self.unparsed += data

    def input_waits(self, body_full: bool | None) -> bool:
        """Whether reading should pause (the connection pauses it): a body stream holds
        more than it may (*body_full*; found out here when None), keep-alive has ended
        (a drain apart: a request may still arrive), input is held back, or the queue
        is full."""
        if body_full is None:
            body = self._reader.body  # the body arriving, and the one being answered
            request = self._responder.request
            body_full = (body is not None and body.reading_paused) or (
                request is not None and request.content.reading_paused
            )
        ending = self.ending
        end = ending.persist_end if ending is not None else None
        return (
            body_full
            or (end is not None and end is not _DRAINING)
            or self.unparsed is not None
            or len(self.queue) >= self._limit
        )

    def lost(self) -> None:
        """The connection is gone: whoever waits on it fails with
        :class:`~lowserve.api.exceptions.ClientDisconnectedError` (the body being read,
        the requests queued, the one being answered, a writer waiting while writing is
        paused). The error is made only when somebody is owed it: an idle connection's
        close makes none."""
        body = self._reader.body
        request = self._responder.request
        queue = self.queue
        if body is None and request is None and not queue and not self._flow.paused:
            return
        err = ClientDisconnectedError("Connection lost")
        if body is not None:
            body.set_exception(err)
        for item in queue:
            if not isinstance(item, WireError):
                item.content.set_exception(err)
        queue.clear()
        if request is not None and request.content is not body:
            request.content.set_exception(err)
        self._flow.lost(err)

    def release(self) -> None:
        """Let go of the connection and its ending, closed (see
        ``HttpProtocol._release``)."""
        self._conn = None  # type: ignore[assignment]  # nothing is started any more
        self.ending = None
