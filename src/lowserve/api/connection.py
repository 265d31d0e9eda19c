"""What requests, responses, body streams, writers and WebSockets need from a connection,
and what the connection needs from a response.

This is the one interface between :mod:`lowserve.api` (and :mod:`lowserve.ws`) and
the connection in :mod:`lowserve.conn`, written as ``typing.Protocol`` classes so that
neither side imports the other's classes, nor reads their private attributes
(``ruff``'s SLF001 checks that). It plays the part of aiohttp's ``base_protocol``: a
stream or a writer depends on these few members, never on the request handler.

A connection promises:

* ``write_bytes`` sends at once (after anything queued before it) and raises
  ``ConnectionResetError`` once the transport is closing;
* ``drain`` returns at once unless ``write_paused``, and then waits for the
  transport's buffer to fall below its low-water mark (or raises on disconnect);
* ``take_over`` is called at most once, after the ``101`` head was written;
* ``pause_reading`` / ``resume_reading`` (by what took the connection over) are
  inputs to the connection's own decision to read, not transport calls.

A response (:class:`Answer`, :class:`WholeAnswer`) promises:

* ``render_bytes`` returns head and body whole, or raises ``StreamedBody`` (before
  changing anything) when its body is a stream that only ``prepare()`` sends;
* after ``render_bytes`` or ``start_writer``, ``will_keep_alive`` is a ``bool``: what
  the head told the client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse
    from .writer import PayloadWriter

__all__ = [
    "Answer",
    "BodyOwner",
    "Connection",
    "StreamConnection",
    "UpgradeReceiver",
    "WholeAnswer",
]


class BodyOwner(Protocol):
    """What a request body stream needs: a loop, and a way to pause reading."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connection runs on."""

    def pause_for_body(self, paused: bool) -> None:
        """The stream's buffer crossed its high (True) or low (False) water mark."""


class UpgradeReceiver(Protocol):
    """What takes over a connection after an ``Upgrade`` (the WebSocket)."""

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def shutdown(self) -> None: ...
    def traffic(self) -> tuple[int, int, int, int]:
        """For --metrics: bytes written, messages received and sent, and requests
        answered (HTTP/2's streams), so far."""


class Connection(BodyOwner, Protocol):
    """The server side of one HTTP/1.1 connection, as responses and upgrades see it."""

    transport: asyncio.Transport | None
    peer: str | None
    client_eof: bool  # the client has shut its sending side (its EOF was read)
    is_tls: bool
    server_header: str | None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs this connection's handlers (None when none runs them)."""

    @property
    def client_max_fields(self) -> int:
        """The most form fields ``post()`` accepts (0: no limit)."""

    @property
    def write_paused(self) -> bool:
        """True while the transport's write buffer is over its high-water mark."""

    def write_bytes(self, data: bytes) -> None:
        """Send *data* now; ``ConnectionResetError`` once the transport is closing."""

    async def drain(self) -> None:
        """Wait while :attr:`write_paused`."""

    def response_started(self, resp: StreamResponse) -> None:
        """A response's head is about to be written."""

    def may_keep_alive(self, request: BaseRequest) -> bool:
        """False when the connection cannot carry another request after *request*."""

    def body_cut_short(self) -> None:
        """A response ended before its declared length: close after it."""

    def take_over(self, receiver: UpgradeReceiver) -> bytes:
        """Hand the transport to *receiver*; returns bytes already read past the head."""

    def pause_reading(self) -> None:
        """What took the connection over holds its input (its queue is full)."""

    def resume_reading(self) -> None:
        """What took the connection over takes input again."""


class StreamConnection(Connection, Protocol):
    """One HTTP/2 stream, as a response sees it (``request.version`` is 2.0).

    Its head leaves as fields rather than bytes, its body as DATA frames through
    ``write_bytes`` (never more than the peer's window allows at once: ``drain``
    waits on that window too), and its end is said rather than framed.
    """

    def send_fields(self, fields: list[tuple[str, str]], end_stream: bool) -> None:
        """Send the response head (``:status`` first); *end_stream*: no body follows."""

    def end_body(self) -> None:
        """The body has all been written: end the stream once it has left."""


class Answer(Protocol):
    """What the connection uses of a response to send it (:class:`StreamResponse`).

    Public names, not aiohttp's API: the connection reads no private attribute.
    """

    #: None until decided (the request's wish then applies), False after
    #: ``force_close()``; once the head is made, whether the connection goes on.
    will_keep_alive: bool | None

    @property
    def prepared(self) -> bool:
        """The head has been made (and the body's writer, if any)."""

    @property
    def eof_sent(self) -> bool:
        """The whole response has been sent."""

    def start_writer(self, request: BaseRequest) -> PayloadWriter:
        """Make the head and the body's writer, synchronously (``prepare()``'s work)."""


class WholeAnswer(Answer, Protocol):
    """A response whose body is in memory (:class:`Response`): one write."""

    def render_bytes(self, request: BaseRequest) -> bytes:
        """Head and body as one buffer; ``StreamedBody`` for a streamed body."""
