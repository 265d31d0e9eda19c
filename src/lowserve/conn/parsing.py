"""Reading requests off the wire: httptools' callbacks, and what llhttp leaves to us.

llhttp (strict, no leniencies) checks the syntax. This half of the connection adds
what it does not: bounds on lines and header counts across segments, ``Host`` on
HTTP/1.1, duplicate singleton fields, HTTP/0.9 and versions past 1.1, transfer
codings other than chunked, expectations, content codings. Each head becomes a
:class:`~lowserve.BaseRequest`, started at once or queued behind the one in flight.
A callback refuses a request by raising :class:`~lowserve.wire.WireError`, which
the connection answers in turn (httptools wraps it; ``_parse`` unwraps it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import httptools

from ..api.streams import EMPTY_STREAM, BodyStream
from ..wire.codings import SUPPORTED_CODINGS, BodyDecoder
from ..wire.errors import WireError
from ..wire.head import HttpVersion, HttpVersion10, HttpVersion11
from ..wire.proxy import read_proxy_headers
from .dispatch import Dispatch
from .state import ConnState

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from .flow import WriteFlow

__all__ = ["Parsing"]

_METHODS = {m.encode(): m for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]}
_SINGLETONS = frozenset(
    b"content-length content-location content-range content-type etag host "
    b"max-forwards server transfer-encoding user-agent".split()
)
_SPECIAL = _SINGLETONS | {b"expect", b"content-encoding"}
_FRAMING = frozenset((b"transfer-encoding", b"content-length", b"expect"))
_VERSIONS = {"1.1": HttpVersion11, "1.0": HttpVersion10}
_LINGER, _BUSY, _HELD = ConnState.LINGER, ConnState.BUSY, ConnState.HELD


class Parsing(Dispatch):
    """The parsing layer of :class:`~lowserve.conn.protocol.HttpProtocol` (see ``Dispatch``)."""

    __slots__ = (
        "_body",
        "_body_left",
        "_decoder",
        "_deferred",
        "_head_span",
        "_headers",
        "_in_head",
        "_parser",
        "_queue",
        "_refused",
        "_resume_body",
        "_resume_head",
        "_resuming",
        "_special",
        "_trust_proxy",
        "_unparsed",
        "_upgrading",
        "_url",
    )

    def _init_parsing(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        #: Proxy headers from this peer are believed (set once connected).
        self._trust_proxy = False
        #: The head being parsed: whether one has begun, its target, its fields,
        #: the framing fields among them, and its size so far across segments.
        self._in_head = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._special: dict[bytes, bytes] = {}
        self._head_span: tuple[int, int, int] | None = None
        #: The body being received, its decoder, and the raw bytes still due on the
        #: wire: a Content-Length body's rest, -1 while a chunked body runs, 0
        #: between bodies. No head can end inside them.
        self._body: BodyStream | None = None
        self._decoder: BodyDecoder | None = None
        self._body_left = 0
        #: Requests (or refusals) waiting behind the one being answered, at most
        #: ``max_pipeline``; bytes held back while that queue is full; a request
        #: whose body was still arriving when its segment ended.
        self._queue: deque[BaseRequest | WireError] = deque()
        self._unparsed: bytearray | None = None
        self._deferred: BaseRequest | None = None
        #: The refusal a callback raised: httptools wraps it, and loses it when it
        #: was raised while another exception was being handled, so it is kept here.
        self._refused: WireError | None = None
        #: An upgrade request's body framing, restated as a head for a fresh parser
        #: (llhttp skips such a body), and whether that restated head is being parsed.
        self._resume_head: bytes | None = None
        self._resume_body: BodyStream | None = None
        self._resuming = False
        #: An upgrade request not yet answered: llhttp parses nothing after its head
        #: until the handler takes the connection over (101) or declines.
        self._upgrading: BaseRequest | None = None

    # What this layer uses of HttpProtocol.
    _wire_error: Callable[[WireError], None]
    _send_continue: Callable[[], None]
    _feed_sliced: Callable[[bytes], None]
    _flow: WriteFlow
    pause_for_body: Callable[[bool], None]

    def _linger(self) -> None:
        """Drop the unread rest of the current body as it arrives (state LINGER)."""
        self._body = None
        self._decoder = None

    def _fresh_parser(self) -> None:
        """A new llhttp parser: after an upgrade head, the old one parses nothing more."""
        self._parser = httptools.HttpRequestParser(self)

    def _feed_unparsed(self) -> None:
        """Parse the bytes held back while the pipeline queue was full."""
        unparsed, self._unparsed = self._unparsed, None
        if unparsed is not None:
            self._feed_sliced(bytes(unparsed))

    def _refuse(self, status: int, detail: str) -> NoReturn:
        """Refuse the request being parsed (from a callback)."""
        err = self._refused = WireError(status, detail)
        raise err

    def _start_deferred(self) -> None:
        """Start the request whose body was still arriving when its segment ended."""
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            if self._flow.paused:
                self._hold(deferred)
            else:
                self._start(deferred)

    def _hold(self, request: BaseRequest) -> None:
        """Keep *request* for later: the peer is not reading what was sent (HELD).

        Answering it now would add a response to a write buffer that is already over
        its high-water mark: a client that pipelines and never reads would grow this
        process's memory by a response per request. ``resume_writing`` starts it.
        """
        self._queue.append(request)
        self._set_state(_HELD)

    def _count_head_bytes(self, data: bytes) -> None:
        """Bound a head that spans segments: llhttp buffers lines without limit."""
        opts = self._opts
        total, lines, line_len = self._head_span or (0, 0, 0)
        total += len(data)
        nl = data.rfind(b"\n")
        if nl < 0:
            line_len += len(data)
        else:
            lines += data.count(b"\n")
            line_len = len(data) - nl - 1
        self._head_span = (total, lines, line_len)
        if lines == 0 and line_len > opts.max_line_size + 32:
            self._wire_error(WireError(414, "request line too long"))
        elif line_len > 2 * opts.max_field_size + 4:
            self._wire_error(WireError(431, "header line too long"))
        elif total > opts.max_line_size + opts.max_headers * (2 * opts.max_field_size + 4):
            self._wire_error(WireError(431, "request head too large"))

    # -- httptools callbacks --------------------------------------------------
    # There is no on_message_begin (one Python call less per request): a head begins
    # with its first URL bytes, and on_headers_complete leaves the fields fresh for
    # the next one. The HEAD state (and its deadline) waits until the segment is parsed.

    def on_url(self, url: bytes) -> None:
        if self._in_head:
            url = self._url + url
        else:
            self._in_head = True
        self._url = url
        if len(url) > self._opts.max_line_size:
            self._refuse(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        opts = self._opts
        headers = self._headers
        if len(headers) >= opts.max_headers:
            self._refuse(431, "too many header fields")
        if len(name) > opts.max_field_size or len(value) > opts.max_field_size:
            self._refuse(431, "header field too long")
        if value and value[-1] in b" \t":
            value = value.rstrip(b" \t")
        headers.append((name, value))
        lname = name.lower()
        if lname in _SPECIAL:
            special = self._special
            if lname in special:
                if lname in _SINGLETONS:
                    self._refuse(400, f"duplicate {name.decode('latin-1')} header")
                value = special[lname] + b", " + value
            special[lname] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._resuming:
            self._resumed()
            return
        parser = self._parser
        special = self._special
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            self._refuse_version(parser.get_http_version())
        elif version is HttpVersion11 and b"host" not in special:
            self._refuse(400, "missing Host header")
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        upgrade = parser.should_upgrade()
        opts = self._opts
        on_wait = None
        body: BodyStream
        if _FRAMING.isdisjoint(special):
            body = EMPTY_STREAM
            self._body = None
        else:
            body, on_wait = self._open_body(special, version, method == "CONNECT")
            if upgrade and body is not EMPTY_STREAM:
                self._hold_for_resume(body)
        headers = self._headers
        request = self._server.request_factory(
            self,
            method,
            self._url.decode("utf-8", "surrogateescape"),
            version,
            headers,
            # An upgrade the handler declines (no 101) leaves the connection as it was;
            # a tunnel (CONNECT) does not.
            parser.should_keep_alive() and not (upgrade and method == "CONNECT"),
            body,
            client_max_size=opts.client_max_size,
        )
        self._headers = []
        self._special = {}
        self._head_span = None
        if upgrade and self._resume_head is None:
            self._upgrading = request  # llhttp pauses after it: see HttpProtocol._parse
        if self._trust_proxy:
            request._remote, request._scheme, request._host = read_proxy_headers(headers)
        if self.state is _BUSY or self.state is _HELD:
            self._queue.append(request)
            if len(self._queue) >= opts.max_pipeline:
                self._update_reading()
        elif self._flow.paused:
            self._hold(request)
        elif body is not EMPTY_STREAM and on_wait is None:
            # Start once this segment is parsed: a small body is then complete, and the
            # handler's read() answers without waiting.
            self._set_state(_BUSY)
            self._deferred = request
        else:
            self._start(request)

    def _refuse_version(self, ver: str) -> NoReturn:
        """Refuse a request whose version is neither 1.0 nor 1.1."""
        if ver == "0.9":
            self._refuse(400, "HTTP/0.9 requests are not supported")
        self._refuse(505, f"HTTP/{ver} is not supported")

    def _hold_for_resume(self, body: BodyStream) -> None:
        """An upgrade request with a body. llhttp stops at the head of every upgrade
        request and skips its body; one with a body is not taken over here (no
        WebSocket has one), so its body is parsed after the head, restated to a
        fresh parser (``HttpProtocol._parse``)."""
        self._resume_head = (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            if body.declared is None
            else b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % body.declared
        )
        # Held out of reach of the message end llhttp reports at the head.
        self._resume_body, self._body = body, None

    def _resumed(self) -> None:
        """The restated head (see _hold_for_resume) is parsed: the request exists
        already, and its body stream waits for the bytes that follow."""
        self._resuming = False
        self._headers = []
        self._special = {}
        self._head_span = None

    def _open_body(
        self, special: dict[bytes, bytes], version: HttpVersion, tunnel: bool
    ) -> tuple[BodyStream, Callable[[], None] | None]:
        """Check a head's framing fields; the body stream (and 100-continue hook) they call for."""
        opts = self._opts
        te = special.get(b"transfer-encoding")
        chunked = False
        if te is not None:
            te = te.lower()
            codings = [c.strip() for c in te.split(b",")]
            if any(c != b"chunked" for c in codings):
                self._refuse(501, f"transfer coding {te.decode('latin-1')!r} not implemented")
            if version is HttpVersion10:
                self._refuse(400, "Transfer-Encoding in an HTTP/1.0 request")
            chunked = True
        clen = special.get(b"content-length")
        has_body = (chunked or (clen is not None and clen != b"0")) and not tunnel
        on_wait = None
        expect = special.get(b"expect")
        if expect is not None:
            if expect.lower() != b"100-continue":
                self._refuse(417, "unsupported expectation")
            if has_body and version is HttpVersion11 and opts.expect_continue:
                on_wait = self._send_continue
        if not has_body:
            self._body = None
            return EMPTY_STREAM, on_wait
        cenc = special.get(b"content-encoding")
        if cenc is not None:
            cenc = cenc.lower().strip()
        decoder = None
        if cenc is not None and opts.auto_decompress and cenc != b"identity":
            if cenc not in SUPPORTED_CODINGS:
                self._refuse(415, f"content coding {cenc.decode('latin-1')!r} not supported")
            decoder = BodyDecoder(
                "gzip" if cenc == b"x-gzip" else cenc.decode(), opts.client_max_size
            )
        # Past the last refusal of the head: from here a fault belongs to the body.
        self._decoder = decoder
        self._body_left = -1 if chunked else int(clen or 0)
        body = self._body = BodyStream(
            self, opts.read_bufsize, on_wait, None if chunked else int(clen or 0)
        )
        return body, on_wait

    def on_body(self, data: bytes) -> None:
        if self._body_left > 0:
            self._body_left -= len(data)
        body = self._body
        if body is None:
            return
        if self._decoder is not None:
            try:
                data = self._decoder.decode(data)
            except WireError as err:
                self._refused = err
                raise
        body.feed_data(data)

    def on_chunk_complete(self) -> None:
        if self._body is not None:
            self._body.end_http_chunk()

    def on_message_complete(self) -> None:
        self._body_left = 0
        body = self._body
        if body is not None:
            self._body = None
            body.feed_eof()
            self._start_deferred()  # its whole body is here: read() will not wait
        if self.state is _LINGER:
            self._next()
