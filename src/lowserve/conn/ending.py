"""How one HTTP/1.1 connection stops carrying requests: the keep-alive verdict,
refusals, and the close.

An :class:`Ending` sits beside :class:`~lowserve.conn.protocol.HttpProtocol` and
decides; the connection changes its state (on the :class:`EndingPort` events
``lingering`` and ``closing``) and pauses reading, as it alone does.

Invariants:

* :meth:`Ending.end` is the one place keep-alive ends (``persist_end``, one
  :class:`~lowserve.conn.state.PersistEnd`, as h11 keeps one verdict): no request
  beyond those owed is carried, and the last owed answer says ``Connection: close``.
* A malformed request is answered with a short text error and ``Connection: close``,
  in order behind any response still owed, and logged at debug level without a
  traceback. Nothing is parsed after it (``error`` is set).
* After a refusal, or with a request body still arriving, the close lingers: FIN is
  sent, and what the client still sends is read and dropped for a moment (DISCARD),
  so that its unread bytes do not turn the answer into a RST.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..api.exceptions import RequestPayloadError
from ..wire.errors import WireError, error_reply
from .state import ConnState, PersistEnd

if TYPE_CHECKING:
    from .output import Output
    from .reader import RequestReader
    from .server import Server

__all__ = ["Ending", "EndingPort"]

_DONE = WireError(0, "closed after its last answer")  # error once a close lingers
_REFUSED, _DRAINING = PersistEnd.REFUSED, PersistEnd.DRAINING
_IDLE, _HEAD, _LINGER = ConnState.IDLE, ConnState.HEAD, ConnState.LINGER
_DISCARD, _REFUSING, _CLOSED = ConnState.DISCARD, ConnState.REFUSING, ConnState.CLOSED


class EndingPort(Protocol):
    """The connection an :class:`Ending` belongs to."""

    transport: asyncio.Transport | None
    state: ConnState
    peer: str | None
    server_header: str | None

    def queue_refusal(self, err: WireError) -> bool:
        """Queue *err* behind the answers still owed; False when none is owed."""

    def update_reading(self, body_full: bool | None = None) -> None:
        """Pause or resume reading, as the connection's state now asks."""

    def lingering(self) -> None:
        """FIN is sent: drop what the client still sends (DISCARD)."""

    def closing(self) -> None:
        """The transport is closing (CLOSING)."""


class Ending:
    """Whether one connection carries more requests, and how it stops (see the
    module docstring)."""

    __slots__ = ("_conn", "_output", "_reader", "_server", "error", "persist_end")

    def __init__(self, conn: EndingPort, server: Server, reader: RequestReader, output: Output):
        self._conn = conn
        self._server = server
        self._reader = reader
        self._output = output
        #: The refusal being answered (or ``_DONE`` once a close lingers); nothing
        #: more is parsed after it.
        self.error: WireError | None = None
        #: Why no request is carried beyond those owed (None: keep-alive goes on).
        self.persist_end: PersistEnd | None = None

    def end(self, why: PersistEnd) -> None:
        """The one place keep-alive ends: no request beyond those owed is carried.
        A reason that stops reading (any but DRAINING) overrides DRAINING."""
        if self.persist_end is None or self.persist_end is _DRAINING:
            self.persist_end = why

    def over_capacity(self) -> None:
        """Accepted past the connection limit: its request is answered 503, then it closes."""
        self.error = WireError(503, "too many connections")
        self.end(_REFUSED)

    def refuse(self, err: WireError) -> None:
        """Refuse a malformed request: answer it in turn, then close."""
        if self.error is not None:
            return
        self.error = err
        self.end(_REFUSED)
        reader = self._reader
        reader.abandon_head()
        self._server.logger.debug(
            "bad request from %s: %s %s", self._conn.peer, err.status, err.detail
        )
        body = reader.take_body()
        if body is not None:
            # The fault is in a body that a handler reads (or will): its read raises,
            # and the handler's answer (the status below, if it lets the error
            # propagate) is the last on this connection. Nothing is parsed after it.
            body.set_exception(RequestPayloadError(err.detail, err.status))
            self._conn.update_reading()
        elif not self._conn.queue_refusal(err):
            self.reply(err)

    def reply(self, err: WireError) -> None:
        """Answer the refusal *err* now, then close."""
        if not self._output.send(error_reply(err, self._conn.server_header)):
            return
        self.error = err
        self.end(_REFUSED)
        self.close()

    def refuse_now(self) -> None:
        """REFUSING: write the 503 and close."""
        conn = self._conn
        transport = conn.transport
        conn.closing()
        if transport is not None and not transport.is_closing() and self.error is not None:
            self._output.send(error_reply(self.error, conn.server_header))
            transport.close()

    def timed_out(self, state: ConnState) -> None:
        """*state* outlived its timeout (the sweeper found it so)."""
        if state is _HEAD:
            self._server.note_refusal(
                "head-timeout", "request heads not received within header_read_timeout: 408"
            )
            self.reply(WireError(408, "request head not received in time"))
        elif state is _IDLE or state is _LINGER:
            self.close()
        elif state is _DISCARD and self._conn.transport is not None:
            self._conn.transport.abort()
        elif state is _REFUSING:
            self.refuse_now()

    def close_lingering(self) -> None:
        """Close as after a refusal (see :meth:`close`): FIN, then the client's bytes
        still in flight are read and dropped, so that they do not turn the last
        frames sent (an HTTP/2 GOAWAY) into a reset."""
        if self.error is None:
            self.error = _DONE
            self.end(_REFUSED)
        self.close()

    def close(self) -> None:
        """Close after the bytes already written have been sent; lingering (DISCARD)
        after a refusal or with a body still arriving (see the module docstring)."""
        conn = self._conn
        if conn.state is _CLOSED or conn.state is _DISCARD:
            return
        transport = conn.transport
        if (
            (self.error is not None or self._reader.body is not None)
            and transport is not None
            and not transport.is_closing()
            and transport.can_write_eof()
        ):
            self._output.flush_out()
            try:
                transport.write_eof()
            except OSError:  # the peer is gone already (ENOTCONN)
                transport.abort()
                return
            if self.error is None:
                self.error = _DONE  # nothing more is parsed: input is dropped
                self.end(_REFUSED)
            conn.lingering()
            return
        conn.closing()
        self._output.flush_out()
        transport = conn.transport
        if transport is not None and not transport.is_closing():
            transport.close()
