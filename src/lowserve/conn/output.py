"""The write side of one HTTP/1.1 connection: what its answers leave through.

A whole small answer is queued (:meth:`Output.queue`) and written at the end of the
loop iteration, with every other answer computed during that poll (in batches of
:data:`~lowserve.conn.server.FLUSH_BATCH` connections when the poll brought more):
the peer gets them in one burst, as it would if each handler ran in a task. Writing
then tells at once whether the peer keeps up (``pause_writing``), so a read of
thousands of pipelined requests from a client that reads none of its answers is not
all answered.

Invariants:

* Bytes leave in the order they were handed over: a direct write (a streamed body,
  ``100 Continue``, a refusal) first writes what is queued.
* At most ``max_pipeline`` answers are queued; the server writes the queue (it is
  :class:`~lowserve.conn.server.Flushable`) once this iteration's I/O is done.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..api.exceptions import ClientDisconnectedError

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Output", "Writable"]


class Writable(Protocol):
    """The connection an :class:`Output` writes to."""

    transport: asyncio.Transport | None


class Output:
    """What one connection writes (see the module docstring)."""

    __slots__ = ("_conn", "_limit", "_out", "_server", "written")

    def __init__(self, conn: Writable, server: Server) -> None:
        self._conn = conn
        self._server = server
        self._limit = server.options.max_pipeline
        #: Small answers queued for the end of this loop iteration (None: none due).
        self._out: list[bytes] | None = None
        #: Bytes handed to the transport (for --metrics: a C addition per write).
        self.written = 0

    def queue(self, data: bytes) -> None:
        """Write a whole small answer at the end of this loop iteration."""
        self.written += len(data)
        out = self._out
        if out is None:
            self._out = [data]
            self._server.schedule_flush(self)
        else:
            out.append(data)
            if len(out) >= self._limit:
                self.flush_out()
                self._out = []  # still due a flush at the end of the iteration

    def flush_out(self) -> None:
        """Write what is queued (the server calls this at the end of the iteration)."""
        out = self._out
        if out is None:
            return
        self._out = None
        transport = self._conn.transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def release(self) -> None:
        """Let go of the connection, closed (see ``HttpProtocol._release``); what is
        still queued could not be written any more."""
        self._conn = None  # type: ignore[assignment]  # nothing writes here any more
        self._out = None

    def write(self, data: bytes) -> None:
        """Write *data* now, behind what is queued; ClientDisconnectedError once the
        transport is closing."""
        transport = self._conn.transport
        if transport is None or transport.is_closing():
            raise ClientDisconnectedError("Cannot write to closing transport")
        if self._out is not None:
            self.flush_out()
        self.written += len(data)
        transport.write(data)

    def send(self, data: bytes) -> bool:
        """Write *data* now, behind what is queued, if the peer can still be written to."""
        transport = self._conn.transport
        if transport is None or transport.is_closing():
            return False
        if self._out is not None:
            self.flush_out()
        self.written += len(data)
        transport.write(data)
        return True
