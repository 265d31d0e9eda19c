"""Connection states, written out by name.

``HttpProtocol._set_state`` is the one place a connection's state changes; each
state that waits on the peer has one deadline (see the protocol module). How an
HTTP/1.1 connection moves::

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

__all__ = ["ConnState", "PersistEnd"]


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

    ``HttpProtocol._end_persistence`` is the one place this is decided (as h11 keeps
    one keep-alive verdict); every ``Connection`` header and the close that follows
    the last answer read it.
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
