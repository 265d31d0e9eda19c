"""Connection states, written out by name.

``HttpProtocol._set_state`` is the one place a connection's state changes; each
state that waits on the peer has one deadline (see the protocol module).
"""

from __future__ import annotations

import enum

__all__ = ["ConnState"]


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
