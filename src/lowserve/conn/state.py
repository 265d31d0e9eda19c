"""Connection states, written out by name.

``HttpProtocol.set_state`` is the one place a connection's state changes; each
state that waits on the peer has one deadline (:class:`Deadlines`). How an HTTP/1.1
connection moves::

    IDLE --a head begins (its target's first bytes)--> HEAD --head complete--> BUSY
    BUSY --response done, keep-alive--> IDLE | HEAD (next head begun) | BUSY (queued)
    BUSY --request body left unread--> LINGER --body ends--> (as above)
    BUSY --handler takes the transport (or HTTP/2 begins)--> UPGRADED
    BUSY --response done, writing paused, a request waits--> HELD --resume_writing--> BUSY
    any --refuse a request--> DISCARD (FIN sent, input dropped for 2 s) --> CLOSED
    (accepted over capacity) REFUSING --its request read, or 0.2 s--> 503, CLOSED
    any --close--> CLOSING --transport gone--> CLOSED
"""

from __future__ import annotations

import enum

__all__ = ["ConnState", "Deadlines", "PersistEnd"]


class ConnState(enum.Enum):
    """Where a connection is in its life."""

    IDLE = "idle"  #: between requests; the keep-alive timeout runs
    HEAD = "head"  #: a request head is arriving; the header-read timeout runs
    BUSY = "busy"  #: a handler is answering
    #: requests wait: the peer is not reading the answers already sent (writing is
    #: paused); the next starts once it reads (send_timeout and min_send_rate run)
    HELD = "held"
    LINGER = "linger"  #: discarding an unread request body; the lingering timeout runs
    UPGRADED = "upgraded"  #: the transport belongs to an upgraded protocol
    DISCARD = "discard"  #: a request was refused; input is dropped until the client closes
    REFUSING = "refusing"  #: over capacity: 503 once the request has been read, then close
    CLOSING = "closing"  #: the last bytes are being written
    CLOSED = "closed"


class PersistEnd(enum.Enum):
    """Why a connection carries no request beyond those it owes answers to.

    ``Ending.end`` (:mod:`lowserve.conn.ending`) is the one place this is decided (as
    h11 keeps one keep-alive verdict); every ``Connection`` header and the close that
    follows the last answer read it.
    """

    #: a request was refused (a bad head or body, over capacity): nothing more is parsed
    REFUSED = "refused"
    #: the client shut its sending side while answers were owed
    PEER_CLOSED = "peer-closed"
    #: a response ended short of its Content-Length
    CUT_SHORT = "cut-short"
    #: the server is stopping: answers say close, but a request sent meanwhile is
    #: still read and answered, and a keep-alive already promised is honoured
    DRAINING = "draining"


_CLOSE_LINGER = 2.0  # seconds to discard input after refusing a request
_REFUSE_WAIT = 0.2  # seconds an over-capacity connection waits for its request
_IDLE, _HEAD, _LINGER = ConnState.IDLE, ConnState.HEAD, ConnState.LINGER
_DISCARD, _REFUSING = ConnState.DISCARD, ConnState.REFUSING


class Deadlines:
    """When each waiting state of one HTTP/1.1 connection times out.

    The connection notes when its state began (``HttpProtocol.set_state``, from the
    server's coarse clock); the sweeper asks :meth:`deadline` whether that state has
    outlived its timeout. So a state change costs a store, and no arithmetic.

    Not changed once made: a server's connections share one (``Server.deadlines``),
    and a draining connection takes its own from :meth:`draining`.
    """

    __slots__ = ("_drain_at", "_grace", "_head", "_keepalive", "_linger")

    def __init__(
        self,
        keepalive: float,
        head: float,
        linger: float,
        drain_at: float = -1.0,
        grace: float = 0.0,
    ) -> None:
        self._keepalive = keepalive
        self._head = head
        self._linger = linger
        #: When the drain began (-1.0: not draining), and its grace.
        self._drain_at = drain_at
        self._grace = grace

    def draining(self, now: float, grace: float) -> Deadlines:
        """These deadlines for a connection that drains from *now* (itself when it
        drains already: the drain begins once): an idle connection gets *grace*
        seconds at most (counted from now if it was idle already), and so does a head
        that was arriving already; later heads get their own timeout."""
        if self._drain_at >= 0:
            return self
        return Deadlines(self._keepalive, self._head, self._linger, now, grace)

    def deadline(self, state: ConnState, since: float) -> float:
        """When *state*, begun at *since*, times out (0.0: never)."""
        if state is _IDLE:
            timeout = self._keepalive
            if self._drain_at >= 0:
                timeout = min(timeout, self._grace) if timeout else self._grace
                since = max(since, self._drain_at)
        elif state is _HEAD:
            end = since + self._head if self._head else 0.0
            if since <= self._drain_at:  # arriving as the drain began (-1.0: none)
                cut = self._drain_at + self._grace
                end = min(end, cut) if end else cut
            return end
        elif state is _LINGER:
            timeout = self._linger
        elif state is _DISCARD:
            timeout = _CLOSE_LINGER
        elif state is _REFUSING:
            timeout = _REFUSE_WAIT
        else:
            return 0.0
        return since + timeout if timeout else 0.0
