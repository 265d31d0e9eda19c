"""What a connection learns of its transport as it is made: its descriptor, its peer's
name, whether TLS carries it; and TCP keep-alive turned on.

uvloop's TCP transport (never TLS: TLS wraps it) keeps its peer's address after it
closes, so a connection on one names its peer only when first asked (:func:`peer_name`):
formatting an address costs ~3,000 instructions (callgrind) that a connection nobody
asks about never pays. Any other transport's peer is named at once.
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

__all__ = ["accepted", "peer_name"]

_STREAM = socket.SOCK_STREAM
_SOL_SOCKET, _SO_KEEPALIVE = socket.SOL_SOCKET, socket.SO_KEEPALIVE

_UV_TCP: type | None
try:
    import uvloop.loop

    _UV_TCP = getattr(uvloop.loop, "TCPTransport", None)
except ImportError:  # pragma: no cover - Windows, or no uvloop
    _UV_TCP = None


def accepted(transport: Any, keep_alive: bool) -> tuple[int, Any, bool]:
    """For *transport*, just made: its descriptor (-1 when it has none), its peer (a
    name, or the transport itself where it keeps the address: see :func:`peer_name`),
    and whether it is TLS. Turns TCP keep-alive on when *keep_alive*."""
    sock = transport.get_extra_info("socket")
    fd = sock.fileno() if sock is not None else -1
    if type(transport) is _UV_TCP:
        if keep_alive and fd >= 0:
            _keep_alive(fd)
        return fd, transport, False
    peer = transport.get_extra_info("peername")
    if keep_alive and fd >= 0 and type(peer) is tuple:
        _keep_alive(fd)  # TCP: its peer is an address
    return fd, _name(peer), transport.get_extra_info("sslcontext") is not None


def peer_name(peer: Any) -> str | None:
    """The peer's name from what :func:`accepted` gave (None before a connection is
    made): the host of a TCP peer, the socket path of a UNIX one ("" when unnamed)."""
    if peer is None or type(peer) is str:
        return peer
    return _name(peer.get_extra_info("peername"))


def _name(peer: Any) -> str:
    return peer[0] if isinstance(peer, tuple | list) else (str(peer) if peer else "")


def _keep_alive(fd: int) -> None:
    """Turn TCP keep-alive probes on for the connected TCP socket *fd*.

    Through a bare ``_socket.socket`` on the descriptor, let go unclosed: uvloop's
    transport socket makes a ``socket.socket`` (a Python class) for each
    ``setsockopt``, ~7,500 instructions (callgrind); this costs ~1,000. Its family is
    the descriptor's (CPython reads it with the ``getsockname`` it checks the
    descriptor with anyway). TCP_NODELAY is the loop's to set: asyncio's and uvloop's TCP
    transports set it as they are made (tests/conn/test_protocol.py checks both
    options on both loops).
    """
    sock = _socket.socket(-1, _STREAM, 0, fd)
    try:
        sock.setsockopt(_SOL_SOCKET, _SO_KEEPALIVE, 1)
    except OSError:
        pass
    finally:
        sock.detach()
