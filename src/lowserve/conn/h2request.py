"""HTTP/2 requests from their HEADERS: the fields checked (RFC 9113 §8), the request
made for the handler, and the short answer to one refused before any handler ran.

This is HTTP/2's counterpart of :mod:`lowserve.wire.head` and the HTTP/1.1 reader's
checks, kept apart from the connection's frames (:mod:`.h2connection`) and the
stream's I/O (:mod:`.h2stream`). h2's own header validation is off: checking here,
in the one pass that reads the fields, cost a tenth of what it did.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..api.streams import EMPTY_STREAM, BodyStream
from ..wire.codings import SUPPORTED_CODINGS
from ..wire.errors import WireError
from ..wire.framing import decide
from ..wire.head import REASONS, HttpVersion20, complete_fields, h2_fields

if TYPE_CHECKING:
    import h2.events

    from ..api.request import BaseRequest
    from .h2stream import Http2Stream
    from .server import Server

__all__ = ["Malformed", "answer_error", "make_request"]


class Malformed(Exception):
    """A request RFC 9113 §8.1.1 calls malformed: its stream is reset (PROTOCOL_ERROR)."""


#: A field name: a token, in lower case (RFC 9113 §8.2, §8.2.1).
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
#: Field names already found valid (at most 512), so that most are checked once.
_GOOD_NAMES: set[bytes] = set()
#: What a field value may not hold: CR, LF, NUL, or whitespace at either end.
_BAD_VALUE = re.compile(rb"[\r\n\x00]|^[ \t]|[ \t]$")
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
_SINGLETONS = frozenset((b"content-length", b"content-type", b"host", b"expect"))
_SPECIAL = _SINGLETONS | {b"content-encoding"}


def make_request(
    stream: Http2Stream, event: h2.events.RequestReceived, server: Server
) -> BaseRequest:
    """The request its HEADERS describe; :class:`Malformed` (RFC 9113 §8.1.1) or
    :class:`~lowserve.wire.errors.WireError` (a bound, answered) when refused.

    The fields are checked here, in the one pass that reads them (h2's own
    validation is off: it cost about a tenth of a request's time): names are
    lower-case tokens, values have no CR, LF, NUL nor outer whitespace, no
    connection-specific field, pseudo-fields known, single and first.
    """
    opts = server.options
    method = path = authority = scheme = None
    fields: list[tuple[bytes, bytes]] = []
    special: dict[bytes, bytes] = {}
    cookies: list[bytes] = []
    max_field = opts.max_field_size
    good_names = _GOOD_NAMES
    bad_value = _BAD_VALUE.search
    for name, value in event.headers:  # bytes: header_encoding is None
        if name[:1] == b":":
            if fields or cookies:
                raise Malformed("pseudo-header field after a regular one")
            if name == b":method" and method is None:
                method = value
            elif name == b":path" and path is None:
                path = value
            elif name == b":authority" and authority is None:
                authority = value
            elif name == b":scheme" and scheme is None:
                scheme = value
            else:
                raise Malformed(f"unknown or repeated pseudo-header {name!r}")
            continue
        if name not in good_names:
            if _NAME.fullmatch(name) is None:
                raise Malformed(f"invalid field name {name[:64]!r}")
            if len(good_names) < 512:
                good_names.add(name)
        if value and bad_value(value) is not None:
            raise Malformed(f"invalid value of {name[:64]!r}")
        if name in _CONNECTION_SPECIFIC and (name != b"te" or value != b"trailers"):
            raise Malformed(f"connection-specific field {name!r}")
        if len(name) > max_field or len(value) > max_field:
            raise WireError(431, "header field too long")
        if name == b"cookie":
            cookies.append(value)
            continue
        if name == b"host":
            if authority is None:
                authority = value
            continue
        if name in _SPECIAL:
            if name in special and name in _SINGLETONS:
                raise WireError(400, f"duplicate {name.decode('latin-1')} header")
            special[name] = value
        fields.append((name, value))
    if method is None:
        raise Malformed("no :method")
    if method == b"CONNECT":
        if authority is None or path is not None or scheme is not None:
            raise Malformed("CONNECT takes :authority only")
    elif not path or scheme is None:
        raise Malformed("no :path or :scheme")
    if len(fields) + len(cookies) > opts.max_headers:
        raise WireError(431, "too many header fields")
    if cookies:
        fields.append((b"cookie", b"; ".join(cookies)))  # RFC 9113 §8.2.3
    if authority is not None:
        fields.insert(0, (b"host", authority))
    method_s = method.decode("ascii", "surrogateescape")
    target = (path or (authority if method == b"CONNECT" else b"") or b"").decode(
        "utf-8", "surrogateescape"
    )
    if len(target) > opts.max_line_size:
        raise WireError(414, "request target too long")
    expect = special.get(b"expect")
    if expect is not None and expect.lower() != b"100-continue":
        raise WireError(417, "unsupported expectation")
    cenc = special.get(b"content-encoding")
    if cenc is not None and opts.auto_decompress:
        coding = cenc.lower().strip()
        if coding != b"identity" and coding not in SUPPORTED_CODINGS:
            raise WireError(415, f"content coding {coding.decode('latin-1')!r} not supported")
    clen = special.get(b"content-length")
    if clen is not None and not clen.isdigit():
        raise WireError(400, "invalid Content-Length")
    if event.stream_ended is not None or clen == b"0":
        body: BodyStream = EMPTY_STREAM
    else:
        body = stream.open_body(special, opts)
    return server.request_factory(
        stream,
        method_s,
        target,
        HttpVersion20,
        fields,
        True,
        body,
        client_max_size=opts.client_max_size,
    )


def answer_error(stream: Http2Stream, err: WireError, server_header: str | None) -> None:
    """A refusal before any handler ran: a short text answer on the stream."""
    body = f"{err.status}: {REASONS.get(err.status, '')} ({err.detail})".encode()
    headers: dict[str, str] = {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
    }
    framing = decide("GET", err.status, 1, True, len(body), False)
    complete_fields(
        _DictFields(headers),
        "GET",
        err.status,
        framing,
        len(body),
        server_header,
        None,
    )
    stream.send_fields(h2_fields(err.status, headers.items()), False)
    stream.write_bytes(body)
    stream.end_body()


class _DictFields:
    """A plain dict as :class:`~lowserve.wire.head.Fields` (for the refusals' heads)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __setitem__(self, name: str, value: str) -> None:
        self._fields[name] = value

    def __delitem__(self, name: str) -> None:
        del self._fields[name]

    def setdefault(self, name: str, default: str) -> str:
        return self._fields.setdefault(name, default)
