"""Flow control beside the connection: writing's pause, ``drain()``, ``send_timeout``
and ``min_send_rate`` (:class:`WriteFlow`), the request body's read progress for
``body_read_timeout`` and ``min_body_rate`` (:class:`BodyWatch`), and what an HTTP/1.1
connection's sweep makes of both (:class:`ProgressWatch`); and an HTTP/2 client's
resets and control frames, counted against their bounds (:class:`FloodWatch`).

Both watches sample: the server's sweeper calls their ``sample`` about once a second,
with its coarse clock, so a byte moved costs no clock read.

A rate is judged as Apache's mod_reqtimeout judges ``MinRate``: a transfer that has
run ``t`` seconds (counting only time when the peer is what it waits on) and moved
``n`` bytes is too slow once ``t > grace + n / rate``. So after the grace it must
keep an average of ``rate`` bytes a second, and bytes moved early buy time later.

Invariants:

* ``WriteFlow.paused`` is what the transport last said (``pause_writing`` /
  ``resume_writing``); while it is False, a writer need not wait.
* Every writer waiting at once shares one future. ``resume`` resolves it and ``lost``
  fails it, so no writer waits past its connection.
* A send-rate account spans the pauses of one transfer: it ends only when a sweep
  passes with writing not paused (the peer kept up, or there was nothing to send).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..api.streams import BodyStream
from ..wire.errors import WireError

if TYPE_CHECKING:
    from .server import Server

__all__ = [
    "BODY_STALLED",
    "BODY_TOO_SLOW",
    "SEND_STALLED",
    "SEND_TOO_SLOW",
    "BodyWatch",
    "FloodWatch",
    "ProgressWatch",
    "WriteFlow",
]

#: What a sweep finds wrong with a transfer (``verdict``): the peer took or sent
#: nothing for the timeout, or moved bytes slower than the minimum rate.
SEND_STALLED = "send-timeout"
SEND_TOO_SLOW = "send-rate"
BODY_STALLED = "body-timeout"
BODY_TOO_SLOW = "body-rate"


class WriteFlow:
    """The write side of one connection: paused or not, the writers waiting, how
    long the peer has taken no bytes, and how many it has taken since it began to
    hold the response back."""

    __slots__ = ("_last", "_low", "_resumed", "_since", "_start", "_taken", "_waiter", "paused")

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        #: The write buffer's smallest size since the pause, and when it got there.
        self._low = 0
        self._since = 0.0
        #: The send-rate account: its first sample's time (0.0: none yet), the bytes
        #: the peer has taken, and the buffer's size when last looked at.
        self._start = 0.0
        self._taken = 0
        self._last = 0
        #: The coarse clock when writing last resumed (-1.0: never).
        self._resumed = -1.0

    def pause(self, buffered: int, now: float) -> None:
        """The transport's buffer went over its high-water mark, holding *buffered* bytes."""
        self.paused = True
        self._low = buffered
        self._since = now
        if now != self._resumed:
            # A sweep has passed since the last resume: a new transfer, a new account.
            self._start = 0.0
            self._taken = 0
        self._last = buffered

    def resume(self, buffered: int, now: float) -> None:
        """The buffer went under its low-water mark, to *buffered* bytes: the waiting
        writers go on."""
        self.paused = False
        if buffered < self._last:
            self._taken += self._last - buffered
        self._last = buffered
        self._resumed = now
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
        """The connection is gone: the waiting writers get *exc*.

        A writer cancelled meanwhile (a stop that cancels its handler) leaves the
        shielded future behind with nobody to read its error, which asyncio would
        log as "Future exception was never retrieved": it is marked retrieved here.
        """
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: the writers still waiting get it all the same

    def sample(self, buffered: int, now: float) -> None:
        """A sweep's look at a paused transport, its buffer holding *buffered* bytes.

        Only shrinking counts as taken: bytes written during a pause hide what the
        peer took meanwhile, which errs against the peer (as ``send_timeout`` does).
        """
        if buffered < self._low:
            self._low = buffered
            self._since = now
        if buffered < self._last:
            self._taken += self._last - buffered
        self._last = buffered
        if not self._start:
            self._start = now

    def verdict(
        self, buffered: int, now: float, timeout: float, rate: int, grace: float
    ) -> str | None:
        """A sweep's look at a paused transport holding *buffered* bytes: SEND_STALLED
        when the peer took nothing for *timeout* seconds, SEND_TOO_SLOW when it takes
        fewer than *rate* bytes a second after *grace* (0 turns either check off)."""
        self.sample(buffered, now)
        if timeout and self.stalled_for(now) >= timeout:
            return SEND_STALLED
        if rate and self.too_slow(rate, grace, now):
            return SEND_TOO_SLOW
        return None

    def stalled_for(self, now: float) -> float:
        """Seconds the peer has taken nothing, as of the last :meth:`sample`."""
        return now - self._since

    def too_slow(self, rate: int, grace: float, now: float) -> bool:
        """Whether the peer has taken fewer than *rate* bytes a second on average
        since the account's first sample, beyond its first *grace* seconds."""
        return bool(self._start) and (now - self._start - grace) * rate > self._taken


class BodyWatch:
    """Read progress of the request body being received."""

    __slots__ = ("_active", "_at", "_body", "_count", "_reading", "_since")

    def __init__(self) -> None:
        self._body: BodyStream | None = None
        #: The watched body's byte count at the last change, and when it changed.
        self._count = 0
        self._since = 0.0
        #: Seconds it has been read from, summed over the sweeps that found reading
        #: on at both ends; the last sample's time, and whether reading was on then.
        self._active = 0.0
        self._at = 0.0
        self._reading = False

    def sample(self, body: BodyStream | None, reading: bool, now: float) -> None:
        """A sweep's look at *body* (the one being received, if any); *reading* is
        whether lowserve was reading it (not paused by back-pressure, and not holding
        back a ``100 Continue``)."""
        if body is not self._body or body is None:
            self._body = body
            self._count = body.total_bytes if body is not None else 0
            self._since = self._at = now
            self._active = 0.0
            self._reading = reading
            return
        if reading and self._reading:
            self._active += now - self._at
        self._at = now
        self._reading = reading
        if not reading or body.total_bytes != self._count:
            self._count = body.total_bytes
            self._since = now

    def verdict(
        self,
        body: BodyStream | None,
        reading: bool,
        now: float,
        timeout: float,
        rate: int,
        grace: float,
    ) -> str | None:
        """A sweep's look at *body* (see :meth:`sample`): BODY_STALLED when it got
        nothing for *timeout* seconds while read from, BODY_TOO_SLOW when it arrives
        slower than *rate* bytes a second after *grace* (0 turns either check off).
        A verdict starts the watch over."""
        self.sample(body, reading, now)
        found = None
        if body is None:
            return None
        if timeout and self.stalled_for(now) >= timeout:
            found = BODY_STALLED
        elif rate and self.too_slow(rate, grace):
            found = BODY_TOO_SLOW
        if found is not None:
            self.forget()
        return found

    def stalled_for(self, now: float) -> float:
        """Seconds the body has received nothing while reading was on (0.0 when it
        grew or reading was off at the last sample, or for a new body)."""
        return now - self._since if self._body is not None else 0.0

    def too_slow(self, rate: int, grace: float) -> bool:
        """Whether the body has arrived at fewer than *rate* bytes a second on
        average over the time it was read from, beyond its first *grace* seconds."""
        body = self._body
        return body is not None and (self._active - grace) * rate > body.total_bytes

    def forget(self) -> None:
        """Start over: the next sample watches afresh."""
        self._body = None


_SEND_STOPS = {
    SEND_STALLED: "client %s read nothing for %.0f s: closing",
    SEND_TOO_SLOW: "client %s reads slower than min_send_rate: closing (%.0f s stalled)",
}
_BODY_TIMEOUTS = {
    BODY_STALLED: "request body not received in time",
    BODY_TOO_SLOW: "request body arriving too slowly",
}


class ProgressWatch:
    """A connection's progress timeouts and rates, judged at each sweep: a request
    body that stopped or crawls is refused (408), a peer that stopped or crawls
    taking its response is cut off. Refusals are counted and logged here."""

    __slots__ = ("_body", "_flow", "_server")

    def __init__(self, server: Server, flow: WriteFlow) -> None:
        self._server = server
        self._flow = flow
        self._body = BodyWatch()

    def check(
        self,
        now: float,
        body: BodyStream | None,
        reading: bool,
        transport: asyncio.Transport | None,
        peer: str | None,
        refusing: bool,
    ) -> WireError | None:
        """A sweep's look at the *body* being received (*reading*: lowserve reads it)
        and at *transport*'s write side, which is aborted if its peer stopped taking
        the response or takes it too slowly. Returns the 408 to answer a body that
        stalled or crawls with (counted only when *refusing*: no refusal is owed yet)."""
        server = self._server
        opts = server.options
        error = None
        found = self._body.verdict(
            body, reading, now, opts.body_read_timeout, opts.min_body_rate, opts.min_rate_grace
        )
        if found is not None and refusing:
            if found is BODY_TOO_SLOW:
                server.note_refusal(
                    "body-rate",
                    f"request bodies arriving slower than min_body_rate "
                    f"({opts.min_body_rate} B/s after {opts.min_rate_grace:g} s): 408",
                )
            else:
                server.count_refusal("body-timeout")
            error = WireError(408, _BODY_TIMEOUTS[found])
        flow = self._flow
        if flow.paused and transport is not None:
            found = flow.verdict(
                transport.get_write_buffer_size(),
                now,
                opts.send_timeout,
                opts.min_send_rate,
                opts.min_rate_grace,
            )
            if found is SEND_TOO_SLOW:
                server.note_refusal(
                    "send-rate",
                    f"responses read slower than min_send_rate "
                    f"({opts.min_send_rate} B/s after {opts.min_rate_grace:g} s): connections "
                    "closed",
                )
            if found is not None:
                server.logger.debug(_SEND_STOPS[found], peer, flow.stalled_for(now))
                transport.abort()
        return error


class FloodWatch:
    """An HTTP/2 client's stream resets and its frames that carry no request (PING,
    SETTINGS, PRIORITY, WINDOW_UPDATE, empty DATA), each counted over a window of
    :attr:`WINDOW` seconds of the server's coarse clock; a count past its bound is a
    flood (CVE-2023-44487, CVE-2019-9512/9515/9518)."""

    __slots__ = ("_control", "_resets", "_window_end")

    #: Seconds over which resets and control frames are counted.
    WINDOW = 10.0

    def __init__(self, now: float) -> None:
        self._window_end = now + self.WINDOW
        self._resets = 0
        self._control = 0

    def _roll(self, now: float) -> None:
        if now >= self._window_end:
            self._window_end = now + self.WINDOW
            self._resets = 0
            self._control = 0

    def reset_floods(self, now: float, bound: int) -> bool:
        """Count one reset stream; True once the window holds more than *bound*."""
        self._roll(now)
        self._resets += 1
        return self._resets > bound

    def control_floods(self, now: float, bound: int) -> bool:
        """Count one control frame; True once the window holds more than *bound*."""
        self._roll(now)
        self._control += 1
        return self._control > bound
