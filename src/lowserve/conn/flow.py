"""Flow control beside the connection: writing's pause, ``drain()`` and ``send_timeout``
(:class:`WriteFlow`), and the request body's read progress for ``body_read_timeout``
(:class:`BodyWatch`).

Both watches sample: the server's sweeper asks them about once a second, with its
coarse clock, so a byte moved costs no clock read.

Invariants:

* ``WriteFlow.paused`` is what the transport last said (``pause_writing`` /
  ``resume_writing``); while it is False, a writer need not wait.
* Every writer waiting at once shares one future. ``resume`` resolves it and ``lost``
  fails it, so no writer waits past its connection.
"""

from __future__ import annotations

import asyncio

from ..api.streams import BodyStream

__all__ = ["BodyWatch", "WriteFlow"]


class WriteFlow:
    """The write side of one connection: paused or not, the writers waiting, and
    how long the peer has taken no bytes."""

    __slots__ = ("_low", "_since", "_waiter", "paused")

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        #: The write buffer's smallest size since the pause, and when it got there.
        self._low = 0
        self._since = 0.0

    def pause(self, buffered: int, now: float) -> None:
        """The transport's buffer went over its high-water mark, holding *buffered* bytes."""
        self.paused = True
        self._low = buffered
        self._since = now

    def resume(self) -> None:
        """The buffer went under its low-water mark: the waiting writers go on."""
        self.paused = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until :meth:`resume` (or :meth:`lost`, which raises its error here)."""
        waiter = self._waiter
        if waiter is None:
            waiter = self._waiter = loop.create_future()
        await asyncio.shield(waiter)

    def lost(self, exc: BaseException) -> None:
        """The connection is gone: the waiting writers get *exc*."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def stalled_for(self, buffered: int, now: float) -> float:
        """Seconds the peer has taken nothing, sampled with the buffer at *buffered*
        bytes (0.0 when it has taken some since the last sample)."""
        if buffered < self._low:
            self._low = buffered
            self._since = now
        return now - self._since


class BodyWatch:
    """Read progress of the request body being received."""

    __slots__ = ("_body", "_count", "_since")

    def __init__(self) -> None:
        self._body: BodyStream | None = None
        #: The watched body's byte count at the last change, and when it changed.
        self._count = 0
        self._since = 0.0

    def stalled_for(self, body: BodyStream | None, reading: bool, now: float) -> float:
        """Seconds *body* has received nothing while *reading* was on (0.0 when it
        grew, reading was paused, or it is a new body)."""
        if body is None:
            self._body = None
            return 0.0
        if body is not self._body or not reading or body.total_bytes != self._count:
            self._body = body
            self._count = body.total_bytes
            self._since = now
            return 0.0
        return now - self._since

    def forget(self) -> None:
        """Start over: the next sample watches afresh."""
        self._body = None
