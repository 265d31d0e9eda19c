"""How a response is framed: the one place that decides it.

Every response lowserve writes — a streamed one, a plain ``Response`` on the fast
path, a cached head, a refusal before any handler ran — takes its body framing,
its ``Connection`` header and its default ``Content-Type`` from here:

1. No body for HEAD, 1xx, 204, 304, or a 2xx to CONNECT (RFC 9110 §6.4.1, §9.3.6);
   no ``Content-Length`` at all on 1xx, 204 or a 2xx to CONNECT (RFC 9110 §8.6),
   while HEAD and 304 may keep the one a handler set to describe the GET.
2. Chunked transfer coding exists from HTTP/1.1 on (RFC 9112 §7): asking for it
   on an HTTP/1.0 response is an error.
3. A body whose length is known is sent with ``Content-Length`` (RFC 9112 §6.2).
4. A body of unknown length is chunked for HTTP/1.1 and, for HTTP/1.0, runs to
   the end of the connection, which then cannot be kept alive (RFC 9112 §6.3).
5. Persistence is said only where it differs from the version's default: an
   HTTP/1.0 response that keeps the connection says ``keep-alive``, an HTTP/1.1
   one that closes it says ``close`` (RFC 9112 §9.3, §9.6).
6. A body without a ``Content-Type`` is ``application/octet-stream`` (aiohttp's
   default; RFC 9110 §8.3 lets the recipient guess otherwise).
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "DEFAULT_TYPE",
    "EMPTY_STATUS",
    "Framing",
    "connection_header",
    "decide",
    "drops_length",
    "length_header",
    "must_be_empty",
]

#: Step 6's content type, for a body that names none.
DEFAULT_TYPE: Final = "application/octet-stream"
EMPTY_STATUS: Final = frozenset((204, 304, *range(100, 200)))


def must_be_empty(method: str, status: int) -> bool:
    """Step 1: whether a response carries no body (HEAD, 1xx, 204, 304, 2xx to CONNECT)."""
    return status in EMPTY_STATUS or method == "HEAD" or (method == "CONNECT" and status < 300)


def drops_length(method: str, status: int) -> bool:
    """Step 1: whether a response must not carry ``Content-Length`` at all."""
    return status in EMPTY_STATUS or (method == "CONNECT" and 200 <= status < 300)


def connection_header(keep_alive: bool, minor: int) -> str | None:
    """Step 5: the ``Connection`` value to send, or None when the default says it."""
    if keep_alive:
        return "keep-alive" if minor == 0 else None
    return "close" if minor == 1 else None


def length_header(method: str, status: int, size: int) -> int | None:
    """Step 3 for a body held in memory: the ``Content-Length`` to send, if any.

    An empty answer to HEAD, or a 304, says nothing rather than claim a length of 0
    for the resource; 1xx, 204 and a 2xx to CONNECT never carry one (step 1).
    """
    if drops_length(method, status):
        return None
    if size or (status != 304 and method != "HEAD"):
        return size
    return None


class Framing(NamedTuple):
    """What :func:`decide` settled for one response."""

    #: Whether body bytes follow the head at all (step 1).
    body: bool
    #: ``Transfer-Encoding: chunked`` (steps 2 and 4).
    chunked: bool
    #: Whether the connection is kept after this response (steps 4 and 5).
    keep_alive: bool
    #: Body bytes that may follow the head: 0 with no body, None until the end.
    limit: int | None


def decide(
    method: str, status: int, minor: int, keep_alive: bool, length: int | None, chunked: bool
) -> Framing:
    """Frame a response to *method*, with *status*, on HTTP/1.*minor*.

    *length* is the body's length if known (a ``Content-Length``); *chunked* says
    the handler asked for chunked coding. RuntimeError for step 2's error.
    """
    body = not must_be_empty(method, status)
    if chunked:
        if minor == 0:
            raise RuntimeError("Using chunked encoding is forbidden for HTTP/1.0")
        chunked = body
    elif length is None and body:
        if minor == 1:
            chunked = True
        else:
            keep_alive = False
    if not body:
        return Framing(False, False, keep_alive, 0)
    return Framing(True, chunked, keep_alive, None if chunked else length)
