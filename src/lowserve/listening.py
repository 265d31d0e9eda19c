"""Listening sockets that stop without losing the connections queued on them.

Closing (or shutting down) a listening socket resets every connection still in its
accept queue, and each of those clients has connected and may have sent its
request: measured before this module existed, 76 resets in 10 SIGTERMs under 16
clients that connect per request. So a stop first keeps new connections out of the
queue (:func:`stop_arrivals`), waits while the queue is accepted (:func:`queued`),
and only then closes.

Only the owner of a socket may do this: the filter is the socket's, shared by every
process holding it, so a worker given the supervisor's socket must leave it alone.

Accepting in bursts (:class:`BurstAcceptor`). uvloop's listener (libuv's) accepts one
connection per turn of the event loop, and a turn of a busy server is long: measured
with ``strace`` under ``wrk -c1024``, every ``epoll_wait`` was followed by exactly one
``accept4`` while hundreds of connections waited in the queue, each already counted as
connected by its client, its request sent. Opened at once, 1,024 connections took over
4 s to be accepted (``ss -ltn``: 807 still queued after 0.25 s, 533 after 2.5 s), and
that wait, not the serving, was the tail: p99 0.2-0.7 s, slowest ~2 s, and wrk's
timeouts. The acceptor watches a duplicate of the listening descriptor and accepts up
to :data:`ACCEPT_BURST` connections each time it is readable, as asyncio's own loop
does (it accepts up to the backlog per event), handing each to the loop's
``connect_accepted_socket``.

On uvloop an accepted connection reaches ``connect_accepted_socket`` as its bare
descriptor (:class:`_Accepted`), not as a ``socket.socket``: uvloop opens its own
handle on the descriptor (libuv closes it with the transport) and only keeps what it
was given, to call ``close()`` on it then. A ``socket.socket`` per connection cost 88
bytes held for the connection's life, and making it (with uvloop's reads of its
``family`` and ``type``, each an enum conversion) about a third of the accept
(bench/accept.py; bench/PROFILE.md, round 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import errno
import logging
import os
import select
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

__all__ = [
    "ACCEPT_BURST",
    "QUEUE_WAIT",
    "SHARED_ACCEPT_BURST",
    "BurstAcceptor",
    "queued",
    "stop_arrivals",
]

log = logging.getLogger("lowserve.server")

#: Most connections accepted each time a listener this process alone serves is
#: readable; past it the rest wait for the next turn of the loop. 1,024 connections
#: opened at once (wrk -c1024, three runs each, the machine loaded): a burst of 128
#: gave p99 466-537 ms, slowest 640-663 ms; 2,048 gave p99 356-602 ms, slowest
#: 375-603 ms (every connection made in the first turns, so their first requests do
#: not wait for the later accepts).
ACCEPT_BURST = 1024
#: The same for a socket other processes may accept from too (the command's workers
#: share the supervisor's): a large burst lets the first worker awake take the whole
#: queue. Measured with two workers on one socket under wrk -c128: a burst of 128 put
#: all 128 connections on one worker, 64 split them 47/81, 16 split them 60/68 (and
#: 531/493 of 1,024), uvloop's one accept per turn 64/64.
SHARED_ACCEPT_BURST = 16

#: Seconds a listener's acceptor rests after running out of descriptors (or memory):
#: the queued connections wait rather than spin the loop on a readable socket.
_RESOURCE_PAUSE = 0.1
#: Descriptors the acceptor leaves free: past ``RLIMIT_NOFILE`` minus this it stops
#: bursting and rests, and only the loop's own listener accepts (one a turn), as before
#: bursts. The server answers 503 within 16 of the limit (conn.server's reserve); a
#: burst that ran into EMFILE first made libuv reset the queued connections (its
#: EMFILE trick: accept and close).
_FD_HEADROOM = 64
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

#: How long a stop waits for the connections already queued to be accepted.
QUEUE_WAIT = 1.0

_SO_ATTACH_FILTER = 26  # Linux, <asm-generic/socket.h>


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# Classic BPF, run on each packet for the listener with the packet's data starting at
# its TCP header (the IP header is already pulled off):
_DROP_SYNS = (_SockFilter * 4)(
    _SockFilter(0x30, 0, 0, 13),  # ldb [13]: the TCP flags
    _SockFilter(0x45, 0, 1, 0x02),  # jset #SYN: next, else skip one
    _SockFilter(0x06, 0, 0, 0),  # ret #0: drop
    _SockFilter(0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep the whole packet
)


def stop_arrivals(sock: Any, path: str | None = None) -> bool:
    """Keep new connections out of *sock*'s accept queue; the queued ones stay.

    * A UNIX socket whose file is *path* (made by this process): the file is
      unlinked, so a ``connect()`` fails with ``ENOENT`` and a proxy tries its next
      server.
    * A TCP listener (Linux): a socket filter that drops SYNs. A new connection is no
      longer answered, and the client's retry (about 1 s later) meets the closed
      port and is refused. Every other packet passes, so a handshake half done when
      the filter lands still completes and joins the queue.

    Returns whether arrivals were stopped; otherwise the close resets the queue as
    it always did (other systems, UNIX sockets without their path).
    """
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    if sys.platform != "linux" or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    program = _SockFprog(len(_DROP_SYNS), _DROP_SYNS)
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(program))
    except OSError:
        return False
    return True


def queued(socks: Iterable[Any]) -> bool:
    """Whether a connection waits in any of these listening sockets' accept queues."""
    poller = select.poll()  # not select(): a listener's descriptor may be past 1023
    for sock in socks:
        poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class BurstAcceptor:
    """Accepts the connections queued on *sock* in bursts, for *factory*'s protocols.

    It works beside the loop's own listener on the same socket (it watches a
    duplicate descriptor), so closing the listener stays the loop's business;
    :meth:`close` must come first, or the duplicate would keep the socket open.
    Each accepted socket goes to ``loop.connect_accepted_socket`` with *ssl_context*,
    as the loop's listener would have sent it. At most *burst* are accepted each time
    the socket is readable.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: Any,
        factory: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext | None = None,
        burst: int = ACCEPT_BURST,
    ) -> None:
        self._loop = loop
        self._burst = burst
        self._factory = factory
        self._ssl = ssl_context
        self._sock: socket.socket | None = socket.socket(fileno=os.dup(sock.fileno()))
        self._sock.setblocking(False)
        #: On uvloop, what every accepted descriptor is handed over in (see _Accepted).
        self._carrier: _Accepted | None = None
        if _is_uvloop(loop):
            self._carrier = _Accepted(self._sock.family)
        #: The context each connection's last step runs in (see _connect_fd): one copy,
        #: not one per connection (add_done_callback copies the context unless given one).
        self._context = contextvars.copy_context()
        self._resting: asyncio.TimerHandle | None = None
        self._watching = False
        self._fd_ceiling = _descriptor_limit() - _FD_HEADROOM
        self._watch()

    def _watch(self) -> None:
        self._resting = None
        if self._sock is not None:
            try:
                self._loop.add_reader(self._sock.fileno(), self._accept)
            except NotImplementedError:  # a loop without add_reader: its listener alone
                self.close()
                return
            self._watching = True

    def _accept(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(self._burst):
            carrier = self._carrier  # per accept: a refused carrier is dropped mid-burst
            try:
                if carrier is not None:
                    # The bare descriptor: no socket.socket made (see _Accepted).
                    fd = sock._accept()[0]  # type: ignore[attr-defined]  # noqa: SLF001 (accept() less its socket object)
                else:
                    conn = sock.accept()[0]
                    fd = conn.fileno()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    # The server's refusals keep descriptors in reserve (Server.connection_made);
                    # here the queue simply waits.
                    self._rest()
                    return
                # The socket stopped listening (EINVAL: the supervisor shut it down to
                # stop); the loop's own listener meets the same error and closes.
                log.debug("stopped accepting in bursts: %r", exc)
                self.close()
                return
            if carrier is not None:
                self._connect_fd(carrier, fd)
            else:
                self._connect(conn)
            if fd >= self._fd_ceiling:
                self._rest()  # near the descriptor limit: the loop's listener alone
                return

    def _rest(self) -> None:
        """Stop watching for ``_RESOURCE_PAUSE`` seconds."""
        assert self._sock is not None
        self._loop.remove_reader(self._sock.fileno())
        self._watching = False
        self._resting = self._loop.call_later(_RESOURCE_PAUSE, self._watch)

    def _connect(self, conn: socket.socket) -> None:
        coro = self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl)
        _Connecting(coro, conn).step(None)

    def _connect_fd(self, carrier: _Accepted, fd: int) -> None:
        """Hand descriptor *fd* to uvloop's ``connect_accepted_socket`` in *carrier*.

        Its first step runs here, at once: uvloop takes the descriptor (``fileno()``)
        or fails before, and then the descriptor is still ours to close.
        """
        carrier.fd = fd
        carrier.taken = False
        coro = self._loop.connect_accepted_socket(
            self._factory,
            carrier,  # type: ignore[arg-type]  # what uvloop reads of a socket
            ssl=self._ssl,
        )
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except (TypeError, AttributeError) as exc:
            if carrier.taken:
                log.debug("accepted connection failed before it was made: %r", exc)
                return
            # This uvloop wants more of a socket than _Accepted offers (a version after
            # the one it was written against): socket objects from now on, and this
            # connection served through one, so the change loses nobody.
            log.warning(
                "uvloop refused a bare accepted descriptor (%r); "
                "accepting socket objects from now on",
                exc,
            )
            self._carrier = None
            self._connect(socket.socket(fileno=fd))
            return
        except Exception as exc:
            if not carrier.taken:
                os.close(fd)
            log.debug("accepted connection failed before it was made: %r", exc)
            return
        # That step only returns what uvloop made; it reads no context variable.
        waiting.add_done_callback(_Connecting(coro, None).step, context=self._context)

    def close(self) -> None:
        """Stop accepting and close the duplicate descriptor."""
        sock, self._sock = self._sock, None
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        if sock is not None:
            if self._watching:
                self._loop.remove_reader(sock.fileno())
                self._watching = False
            sock.close()


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return False
    return isinstance(loop, uvloop.Loop)


def _descriptor_limit() -> int:
    """This process's soft RLIMIT_NOFILE (a large number when unlimited or unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return 1 << 30
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 30 if limit == resource.RLIM_INFINITY else limit


class _Connecting:
    """Runs ``connect_accepted_socket`` to its end without a Task.

    The coroutine makes the transport at once and then waits for its one future (the
    connection made, or the TLS handshake done); a Task per accepted connection, and
    its context, cost ~0.5 KiB of memory that stayed in use after a burst (bench/run.py
    idle: 10,000 connections, 5.47 KiB each against 4.80 without bursts).
    """

    __slots__ = ("conn", "coro")

    def __init__(self, coro: Coroutine[Any, Any, Any], conn: socket.socket | None) -> None:
        self.coro = coro
        #: The socket to close if the connection fails (None: the transport owns the
        #: descriptor, and closed it when it failed).
        self.conn = conn

    def step(self, _done: asyncio.Future[Any] | None) -> None:
        try:
            waiting = self.coro.send(None)
        except StopIteration:
            return
        except Exception as exc:
            # The client went away, or its TLS handshake failed: closed, one DEBUG line.
            if self.conn is not None:
                self.conn.close()
            log.debug("accepted connection failed before it was made: %r", exc)
            return
        waiting.add_done_callback(self.step)


class _Accepted:
    """An accepted descriptor as uvloop's ``connect_accepted_socket`` reads a socket.

    uvloop reads ``type`` and ``family``, opens its own handle on ``fileno()`` (from
    then on libuv owns the descriptor and closes it with the transport), and keeps the
    object only to call ``close()`` when the transport closes. So one object per
    listener serves every connection it accepts, each in turn, synchronously:
    ``fd`` is the one being handed over, ``taken`` whether uvloop took it yet.
    """

    __slots__ = ("family", "fd", "taken")
    type = socket.SOCK_STREAM

    def __init__(self, family: int) -> None:
        self.family = family
        self.fd = -1
        self.taken = False

    def fileno(self) -> int:
        """The descriptor being handed over; uvloop owns it once it asked."""
        self.taken = True
        return self.fd

    def close(self) -> None:
        """Called by uvloop as a transport closes: libuv closed its descriptor."""

    def __repr__(self) -> str:
        return "<accepted descriptor>"
