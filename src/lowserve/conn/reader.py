"""Reading requests off the wire, without I/O: bytes in, requests and refusals out.

:class:`RequestReader` feeds llhttp (httptools, strict, no leniencies) and adds what
llhttp does not check: bounds on lines and header counts across segments, ``Host``
on HTTP/1.1, duplicate singleton fields, HTTP/0.9 and versions past 1.1, transfer
codings other than chunked, expectations, content codings. Each head becomes a
:class:`~lowserve.BaseRequest` handed to the :class:`ReaderSink`; each refusal a
:class:`~lowserve.wire.WireError` handed to it. The reader never touches a
transport, a state, a queue or a timer: its tests feed it bytes and collect what
comes out (``tests/conn/test_reader.py``).

Invariants:

* At most one head is being read (``in_head``) and at most one body is being
  received (``body``); ``body_left`` is that body's raw bytes still due on the wire
  (-1 while a chunked body runs, 0 between bodies), so no head can end inside it.
* A refusal ends the reading of its request: the reader says it once, and the
  connection parses nothing more after it.
* llhttp stops at the head of an upgrade request (``feed`` returns what follows it);
  an upgrade request with a body has that body read first, from a head restated to
  a fresh parser, and is never handed over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, Protocol

import httptools

from ..api.connection import Connection
from ..api.request import BaseRequest, make_request
from ..api.streams import EMPTY_STREAM, BodyStream
from ..wire.codings import SUPPORTED_CODINGS, BodyDecoder
from ..wire.errors import WireError, method_refusal, syntax_refusal
from ..wire.head import HttpVersion, HttpVersion10, HttpVersion11

if TYPE_CHECKING:
    from ..options import ServerOptions

__all__ = ["ReaderSink", "RequestReader"]

log = logging.getLogger("lowserve.server")

_METHODS = {m.encode(): m for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]}
_SINGLETONS = frozenset(
    b"content-length content-location content-range content-type etag host "
    b"max-forwards server transfer-encoding user-agent".split()
)
_SPECIAL = _SINGLETONS | {b"expect", b"content-encoding"}
_FRAMING = frozenset((b"transfer-encoding", b"content-length", b"expect"))
_VERSIONS = {"1.1": HttpVersion11, "1.0": HttpVersion10}
#: The end of a request line, for the version read off the line itself (see feed).
_LINE_ENDS = {b" HTTP/1.1": HttpVersion11, b" HTTP/1.0": HttpVersion10}
_PIECE = 65536  # most bytes handed to llhttp at once
#: A read longer than this that begins a request is not searched for head ends but
#: has its first head parsed alone (slice_end), so that its body is skipped: counting
#: head ends costs ~0.7 ns a byte (11 µs over a 16 KiB body), the extra parse ~1 µs.
LONG_READ = 2048
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # HTTP/2's connection preface


class ReaderSink(Connection, Protocol):
    """Where a :class:`RequestReader` delivers: the connection (which requests and
    body streams also belong to)."""

    def request_received(self, request: BaseRequest, after: bool) -> None:
        """A head was read. *after*: its body follows in this data, and the request
        is best started after it (a small body is then whole, and the handler's
        read() does not wait)."""

    def upgrade_received(self, request: BaseRequest) -> None:
        """An upgrade request's head was read, and llhttp stops after it: ``feed``
        returns the rest."""

    def body_complete(self) -> None:
        """The body being received ended (its stream has its EOF)."""

    def body_dropped(self) -> None:
        """The body dropped by :meth:`RequestReader.drop_body` ended on the wire."""

    def refuse(self, err: WireError) -> None:
        """The request being read is refused (answered in turn, then the connection closes)."""

    def send_continue(self) -> None:
        """Send ``100 Continue``: the handler reads a body the client holds back."""


class RequestReader:
    """The HTTP/1.1 request reader of one connection (see the module docstring)."""

    __slots__ = (
        "_decoder",
        "_dropping",
        "_factory",
        "_head_span",
        "_headers",
        "_line_version",
        "_max_field",
        "_max_headers",
        "_max_line",
        "_opts",
        "_parser",
        "_refused",
        "_refusing",
        "_resume_body",
        "_resume_head",
        "_resuming",
        "_sink",
        "_special",
        "_url",
        "body",
        "body_left",
        "in_head",
        "preface",
    )

    # The httptools callbacks this reader has no use for, said to be none: httptools
    # asks for each by getattr with a default, and a missing one raises and formats
    # an AttributeError inside, ~2,000 instructions each per connection made.
    on_message_begin = None
    on_chunk_header = None

    def __init__(
        self,
        sink: ReaderSink,
        options: ServerOptions,
        factory: Callable[..., BaseRequest],
    ) -> None:
        self._sink = sink
        self._opts = options
        #: The head's bounds, read for every head and field: kept as C integers,
        #: compiled (a ServerOptions field read costs ~140 instructions, three per
        #: field line), and read only from here.
        self._max_line = options.max_line_size
        self._max_field = options.max_field_size
        self._max_headers = options.max_headers
        # BaseRequest itself is made by make_request, the same without the class call.
        self._factory = make_request if factory is BaseRequest else factory
        self._parser = httptools.HttpRequestParser(self)
        #: The head being read: whether one has begun, its target, its fields, the
        #: framing fields among them, and its size so far across segments. The
        #: fields' list and dict are made as a head begins (on_url): between
        #: requests (an idle keep-alive connection) there are none.
        self.in_head = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._special: dict[bytes, bytes] | None = None
        self._head_span: tuple[int, int, int] | None = None
        #: The version at the end of the first request line of the data being fed,
        #: when that data began a request (see feed); None when it is to be asked of
        #: llhttp.
        self._line_version: HttpVersion | None = None
        #: The body being received, its decoder, and its raw bytes still due.
        self.body: BodyStream | None = None
        self._decoder: BodyDecoder | None = None
        self.body_left = 0
        #: The rest of the current body is dropped (drop_body): the sink hears its end.
        self._dropping = False
        #: The refusal a callback raised: httptools wraps it, and loses it when it
        #: was raised while another exception was being handled, so it is kept here.
        self._refused: WireError | None = None
        #: A refusal was handed to the sink: nothing more is read.
        self._refusing = False
        #: An upgrade request's body framing, restated as a head for a fresh parser
        #: (llhttp skips such a body), and whether that restated head is being read.
        self._resume_head: bytes | None = None
        self._resume_body: BodyStream | None = None
        self._resuming = False
        #: The connection began with HTTP/2's preface: ``feed`` returned what
        #: follows it, as after an upgrade head.
        self.preface = False

    # -- what the connection calls ----------------------------------------------
    def feed(self, data: bytes | memoryview) -> bytes | memoryview | None:
        """Read *data*; returns the bytes after an upgrade head where llhttp stopped
        (then nothing more is read until :meth:`resume` or :meth:`fresh_parser`),
        else None.

        llhttp gets at most 64 KiB at a time, so body bytes reach the stream in
        pieces of that size (one large buffer per read is slower to allocate and to
        read from in chunks). A refusal is handed to the sink and ends this call, as
        does the connection closing meanwhile (a handler run from a callback).
        """
        if len(data) > _PIECE:
            return self._feed_pieces(data)
        # Data that begins a request (no head, no body under way) has that request's
        # version at the end of its first line, which llhttp parsed the same way (a
        # target holds no space): reading it there costs ~300 instructions, llhttp's
        # get_http_version() ~2,600 (it formats a string). Used by the first head
        # that ends in this call only; later ones in the same data ask llhttp.
        version = None
        if not self.in_head and self.body_left == 0 and type(data) is bytes:
            end = data.find(b"\r\n")
            if end >= 9:
                version = _LINE_ENDS.get(data[end - 9 : end])
        self._line_version = version
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            return data[exc.args[0] :]
        except httptools.HttpParserCallbackError as exc:
            inner, self._refused = self._refused or exc.__context__, None
            if isinstance(inner, WireError):
                self._refuse_now(inner)
            else:  # a bug of ours: still answer, but keep the traceback
                log.error("error while parsing a request", exc_info=inner)
                self._refuse_now(WireError(500, "internal error"))
            return None
        except httptools.HttpParserInvalidMethodError:
            self._refuse_now(method_refusal(bytes(data[:64])))
            return None
        except httptools.HttpParserError as exc:
            if (
                str(exc) == "Pause on PRI/Upgrade"
                and (rest := self._after_preface(data)) is not None
            ):
                return rest  # the sink decides: HTTP/2, or the 505 (refuse_preface)
            self._refuse_now(syntax_refusal(str(exc), bytes(data[:8300])))
            return None
        if self.in_head:
            self._count_head_bytes(data)
        return None

    def _feed_pieces(self, data: bytes | memoryview) -> bytes | None:
        view = memoryview(data)
        sink = self._sink
        for start in range(0, len(data), _PIECE):
            tail = self.feed(view[start : start + _PIECE])
            if tail is not None:
                return bytes(tail) + data[start + _PIECE :]
            if self._refusing or sink.transport is None:
                break
        return None

    def slice_end(self, data: bytes, pos: int, room: int) -> int:
        """Where a slice of *data* from *pos* ends so that it completes at most *room*
        requests (``room >= 1``): llhttp parses all it is given, so the connection
        bounds its pipeline by giving it no more.

        Every head ends with an empty line, and at most one head can complete in a
        slice beyond the empty lines wholly inside it (the one whose last line began
        before the slice). So a slice holding ``room - 1`` of them, and stopping short
        of the last byte of the next, completes at most ``room`` requests. A long read
        that begins a request (no head under way) is cut after its first head: one
        request.
        """
        n = len(data)
        left = self.body_left
        if pos == 0 and left == 0 and n > LONG_READ and not self.in_head:
            # A long read that begins a request: its first head alone, so that its
            # body's length is known before the rest is searched (a webhook's body
            # arrives with its head, and holds no head end worth the search). Not a
            # read that ends a head begun before it: that head and the next could end.
            i = data.find(b"\r\n\r\n")
            return n if i < 0 else i + 4
        end = pos + max(left, 0)  # body bytes still due hold no head
        for _ in range(room - 1):
            i = data.find(b"\r\n\r\n", end)
            if i < 0:
                return n
            end = i + 4
        i = data.find(b"\r\n\r\n", end)
        return n if i < 0 else i + 3

    def resume(self, tail: bytes | memoryview) -> bytes | None:
        """After ``feed`` stopped at an upgrade head that has a body: the bytes to
        feed next (the body's framing restated as a head, then *tail*), read by a
        fresh parser; None for an upgrade request without one."""
        head, self._resume_head = self._resume_head, None
        if head is None:
            return None
        self.body, self._resume_body = self._resume_body, None
        self.fresh_parser()
        self._resuming = True
        return head + bytes(tail)

    def fresh_parser(self) -> None:
        """A new llhttp parser: after an upgrade head, the old one reads nothing more."""
        self._parser = httptools.HttpRequestParser(self)

    def release(self) -> None:
        """Let go of the sink, the parser (which keeps this reader's callbacks) and the
        bodies, once the connection is closed (see ``HttpProtocol._release``)."""
        # nothing is read any more: neither is used again
        self._sink = None  # type: ignore[assignment]
        self._parser = None  # type: ignore[assignment]
        self.body = self._resume_body = None

    def drop_body(self) -> None:
        """Drop the unread rest of the current body as it arrives; the sink hears
        (``body_dropped``) when it has all gone by."""
        self.body = None
        self._decoder = None
        self._dropping = True

    def take_body(self) -> BodyStream | None:
        """The body being received, which stops being fed (a refusal or a timeout
        fails it); None if there is none."""
        body, self.body = self.body, None
        return body

    def abandon_head(self) -> None:
        """Forget the head being read (the connection refused or closes)."""
        self.in_head = False

    # -- refusals ---------------------------------------------------------------
    def _refuse(self, status: int, detail: str) -> NoReturn:
        """Refuse the request being read (from a callback: httptools wraps the raise)."""
        err = self._refused = WireError(status, detail)
        raise err

    def _refuse_now(self, err: WireError) -> None:
        self.in_head = False
        self._refusing = True
        self._sink.refuse(err)

    def _after_preface(self, data: bytes | memoryview) -> bytes | memoryview | None:
        """The bytes after HTTP/2's connection preface in *data* (``preface`` is then
        True); None when *data* does not end it (the 505 stands).

        llhttp checks the whole 24-byte preface and stops in the segment that ends
        it ("Pause on PRI/Upgrade"). That segment begins with the preface's last
        *k* bytes (it may have arrived split), and what follows is a frame, whose
        first byte (0, a length's top byte) is no preface byte: the longest
        match is the one.
        """
        head = bytes(data[: len(_PREFACE)])
        for k in range(len(head), 0, -1):
            if _PREFACE.endswith(head[:k]):
                self.preface = True
                self.in_head = False
                self._refusing = True  # nothing more is parsed as HTTP/1.1
                return data[k:]
        return None

    def refuse_preface(self) -> None:
        """The sink does not take the connection to HTTP/2: answer the preface 505."""
        self.preface = False
        self._refusing = False
        self._refuse_now(WireError(505, "HTTP/2.0 is not supported"))

    def _count_head_bytes(self, data: bytes | memoryview) -> None:
        """Bound a head that spans segments: llhttp buffers lines without limit."""
        line_max, field_max = self._max_line, self._max_field
        total, lines, line_len = self._head_span or (0, 0, 0)
        total += len(data)
        raw = bytes(data) if isinstance(data, memoryview) else data
        nl = raw.rfind(b"\n")
        if nl < 0:
            line_len += len(raw)
        else:
            lines += raw.count(b"\n")
            line_len = len(raw) - nl - 1
        self._head_span = (total, lines, line_len)
        if lines == 0 and line_len > line_max + 32:
            self._refuse_now(WireError(414, "request line too long"))
        elif line_len > 2 * field_max + 4:
            self._refuse_now(WireError(431, "header line too long"))
        elif total > line_max + self._max_headers * (2 * field_max + 4):
            self._refuse_now(WireError(431, "request head too large"))

    # -- httptools callbacks ----------------------------------------------------
    # There is no on_message_begin (one Python call less per request): a head begins
    # with its first URL bytes, which make its fields' list and dict, and
    # on_headers_complete lets go of them (the request holds the list).

    def on_url(self, url: bytes) -> None:
        if self.in_head:
            url = self._url + url
        else:
            self.in_head = True
            self._headers = []
            self._special = {}
        self._url = url
        if len(url) > self._max_line:
            self._refuse(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        limit = self._max_field
        if not self.in_head:
            # A chunked body's trailer field: bounded as a head's, then dropped (it
            # belongs to no head; aiohttp drops trailers too).
            if len(name) > limit or len(value) > limit:
                self._refuse(431, "header field too long")
            return
        headers = self._headers
        assert headers is not None  # on_url began the head
        if len(headers) >= self._max_headers:
            self._refuse(431, "too many header fields")
        if len(name) > limit or len(value) > limit:
            self._refuse(431, "header field too long")
        if value and value[-1] <= 32:
            # Trailing whitespace (llhttp lets no other byte below 33 through). One
            # comparison: `in b" \t"` cost ~230 instructions more a field, compiled.
            value = value.rstrip(b" \t")
        headers.append((name, value))
        lname = name.lower()
        if lname in _SPECIAL:
            special = self._special
            assert special is not None
            if lname in special:
                if lname in _SINGLETONS:
                    self._refuse(400, f"duplicate {name.decode('latin-1')} header")
                value = special[lname] + b", " + value
            special[lname] = value

    def on_headers_complete(self) -> None:
        self.in_head = False
        version = self._line_version
        self._line_version = None
        if self._resuming:
            self._resumed()
            return
        parser = self._parser
        special = self._special
        headers = self._headers
        assert special is not None and headers is not None  # on_url began the head
        if version is None:
            version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            self._refuse_version(parser.get_http_version())
        elif version is HttpVersion11 and b"host" not in special:
            self._refuse(400, "missing Host header")
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        upgrade = parser.should_upgrade()
        body: BodyStream
        after = False
        if _FRAMING.isdisjoint(special):
            body = EMPTY_STREAM
            self.body = None
        else:
            body, on_wait = self._open_body(special, version, method == "CONNECT")
            if body is not EMPTY_STREAM:
                if upgrade:
                    self._hold_for_resume(body)
                after = on_wait is None
        request = self._factory(
            self._sink,
            method,
            self._url.decode("utf-8", "surrogateescape"),
            version,
            headers,
            # An upgrade the handler declines (no 101) leaves the connection as it was;
            # a tunnel (CONNECT) does not.
            parser.should_keep_alive() and not (upgrade and method == "CONNECT"),
            body,
            self._opts.client_max_size,
        )
        self._headers = self._special = None
        self._url = b""
        self._head_span = None
        if upgrade and self._resume_head is None:
            self._sink.upgrade_received(request)
        else:
            self._sink.request_received(request, after)

    def _refuse_version(self, ver: str) -> NoReturn:
        """Refuse a request whose version is neither 1.0 nor 1.1."""
        if ver == "0.9":
            self._refuse(400, "HTTP/0.9 requests are not supported")
        self._refuse(505, f"HTTP/{ver} is not supported")

    def _hold_for_resume(self, body: BodyStream) -> None:
        """An upgrade request with a body. llhttp stops at the head of every upgrade
        request and skips its body; one with a body is not taken over here (no
        WebSocket has one), so its body is read after the head, restated to a
        fresh parser (see :meth:`feed`)."""
        self._resume_head = (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            if body.declared is None
            else b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % body.declared
        )
        # Held out of reach of the message end llhttp reports at the head.
        self._resume_body, self.body = body, None

    def _resumed(self) -> None:
        """The restated head (see _hold_for_resume) is read: the request exists
        already, and its body stream waits for the bytes that follow."""
        self._resuming = False
        self._headers = self._special = None
        self._head_span = None

    def _open_body(
        self, special: dict[bytes, bytes], version: HttpVersion, tunnel: bool
    ) -> tuple[BodyStream, Callable[[], None] | None]:
        """Check a head's framing fields; the body stream (and 100-continue hook)
        they call for."""
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
                on_wait = self._sink.send_continue
        if not has_body:
            self.body = None
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
        length = None if chunked else int(clen or 0)  # parsed once: ~470 instructions
        self.body_left = -1 if length is None else length
        body = self.body = BodyStream(self._sink, opts.read_bufsize, on_wait, length)
        return body, on_wait

    def on_body(self, data: bytes) -> None:
        if self.body_left > 0:
            self.body_left -= len(data)
        body = self.body
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
        if self.body is not None:
            self.body.end_http_chunk()

    def on_message_complete(self) -> None:
        self.body_left = 0
        body = self.body
        if body is not None:
            self.body = None
            body.feed_eof()
            self._sink.body_complete()  # its whole body is here: read() will not wait
        elif self._dropping:
            self._dropping = False
            self._sink.body_dropped()
