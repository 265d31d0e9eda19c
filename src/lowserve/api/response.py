"""Responses: :class:`StreamResponse`, :class:`Response` and :func:`json_response`.

The head is computed in one synchronous step (:meth:`StreamResponse._make_head`)
so that the connection can answer a plain ``Response`` without awaiting anything:
head and body leave in one ``transport.write``. What the connection uses of a
response (:meth:`Response.render_bytes`, :meth:`StreamResponse.start_writer`,
:attr:`~StreamResponse.will_keep_alive`, :attr:`~StreamResponse.eof_sent`) is
written down in :class:`lowserve.api.connection.Answer`; those names are public so
that the connection reads nothing private, and are not part of aiohttp's API.

These classes have no ``__slots__``: every ``HTTPException`` is both a
``Response`` and an ``Exception``, and CPython cannot combine a slotted layout
with ``BaseException``'s.
"""

from __future__ import annotations

import inspect
import io
import json
import mimetypes
import os
import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, overload
from urllib.parse import quote

from multidict import CIMultiDict

from ..wire.codings import ContentCoding, make_compressor, negotiate
from ..wire.framing import (
    DEFAULT_TYPE,
    EMPTY_STATUS,
    Framing,
    connection_header,
    decide,
    length_header,
)
from ..wire.head import (
    GOOD_NAMES,
    REASONS,
    build_head,
    check_header_field,
    complete_fields,
    date_line,
    h2_fields,
    status_line,
    whole_answer,
)
from ..wire.headers import parse_content_type
from .mapping import ResponseKey, StateMapping
from .response_headers import HeaderFields
from .writer import PayloadWriter

if TYPE_CHECKING:
    from .connection import Answer, StreamConnection, WholeAnswer
    from .request import BaseRequest

__all__ = ["Response", "StreamResponse", "json_bytes_response", "json_response"]
_T = TypeVar("_T")

LooseHeaders = Any
_BOTH_TYPES = "passing both Content-Type header and content_type or charset params is forbidden"
_BODYLESS_METHODS = frozenset(("HEAD", "CONNECT"))
_F_TYPE, _F_LENGTH, _F_DATE, _F_SERVER, _F_CONNECTION = 1, 2, 4, 8, 16
_FLAGS = {
    "Content-Type": _F_TYPE,
    "Content-Length": _F_LENGTH,
    "Date": _F_DATE,
    "Server": _F_SERVER,
    "Connection": _F_CONNECTION,
}


class StreamResponse(HeaderFields, StateMapping[ResponseKey[Any]]):
    """A response whose body the handler writes after :meth:`prepare`."""

    _send_head_at_once = True
    _key_class = ResponseKey
    _seen_str_keys: ClassVar[set[object]] = set()
    # Fields rarely set have their defaults on the class. Those every answer reads are
    # set by each constructor instead: CPython 3.11 cannot specialise an attribute
    # access (load or store) whose name the class also defines, and render_bytes reads them all.
    _state: dict[str | ResponseKey[Any], Any] | None = None
    _compressed: bytes | None = None
    _compression_force: ContentCoding | None = None
    _compression_strategy: int | None = None
    _req: BaseRequest | None = None
    _writer: PayloadWriter | None = None
    _head_length = 0  # bytes of the head once sent (output_length)
    _stream: Any  # a file or async iterable body (Response only); see _send_stream
    _body: bytes | bytearray | None
    _body_length: int
    _compression: bool
    _eof_sent: bool
    #: The connection's answer to keep-alive (see api.connection.Answer): None until
    #: decided, False after force_close(), then what the head said.
    will_keep_alive: bool | None

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        headers: LooseHeaders | None = None,
    ) -> None:
        self._headers = None if headers is None else CIMultiDict(headers)
        self._ctype = None
        self._body = None
        self._stream = None
        self._cookies = None
        self._chunked = self._compression = self._eof_sent = False
        self.will_keep_alive = None
        self._body_length = 0
        self._init_state(status, reason)

    if TYPE_CHECKING:  # as aiohttp: a typed key gives its type (StateMapping runs these)

        @overload
        def __getitem__(self, key: ResponseKey[_T]) -> _T: ...
        @overload
        def __getitem__(self, key: str) -> Any: ...
        def __getitem__(self, key: str | ResponseKey[Any]) -> Any: ...
        @overload
        def __setitem__(self, key: ResponseKey[_T], value: _T) -> None: ...
        @overload
        def __setitem__(self, key: str, value: Any) -> None: ...
        def __setitem__(self, key: str | ResponseKey[Any], value: Any) -> None: ...

    def _init_state(self, status: int, reason: str | None) -> None:
        if reason is None and type(status) is int:
            self._status = status
            self._reason = REASONS.get(status, "")
        else:
            self._set_status(status, reason)

    # -- status ---------------------------------------------------------------
    @property
    def status(self) -> int:
        return self._status

    @property
    def reason(self) -> str:
        return self._reason

    def set_status(self, status: int, reason: str | None = None) -> None:
        """Change the status (and reason) before the response is prepared."""
        if self.prepared:
            raise AssertionError(
                "Cannot change the response status code after the headers have been sent"
            )
        self._set_status(status, reason)

    def _set_status(self, status: int, reason: str | None) -> None:
        self._status = int(status)
        if reason is None:
            reason = REASONS.get(self._status, "")
        elif "\r" in reason or "\n" in reason:
            raise ValueError("Reason cannot contain \\r or \\n")  # aiohttp's words
        elif "\0" in reason:
            raise ValueError("Reason cannot contain \\0")
        self._reason = reason

    # -- state ----------------------------------------------------------------
    @property
    def prepared(self) -> bool:
        return self._eof_sent or self._writer is not None

    @property
    def keep_alive(self) -> bool | None:
        return self.will_keep_alive

    @property
    def eof_sent(self) -> bool:
        """The whole response has been sent (or handed to the connection to send)."""
        return self._eof_sent

    def force_close(self) -> None:
        """Close the connection after this response."""
        self.will_keep_alive = False

    @property
    def body_length(self) -> int:
        return self._body_length

    @property
    def chunked(self) -> bool:
        return self._chunked

    @property
    def compression(self) -> bool:
        return self._compression

    @property
    def task(self) -> Any:
        return self._req.task if self._req is not None else None

    @property
    def output_length(self) -> int:
        """Bytes written so far, head included (deprecated in aiohttp, as here)."""
        warnings.warn("output_length is deprecated", DeprecationWarning, stacklevel=2)
        writer = self._writer
        if writer is not None:
            return writer.head_size + writer.output_size
        return self._head_length + self._body_length

    def enable_chunked_encoding(self, chunk_size: int | None = None) -> None:
        """Send the body with chunked transfer coding."""
        if "Content-Length" in self.headers:
            raise RuntimeError("You can't enable chunked encoding when a content length is set")
        if chunk_size is not None:
            warnings.warn("Chunk size is deprecated #1615", DeprecationWarning, stacklevel=2)
        self._chunked = True

    def enable_compression(
        self, force: bool | ContentCoding | None = None, strategy: int | None = None
    ) -> None:
        """Compress the body with the best coding the client accepts (or *force*)."""
        if isinstance(force, bool):  # before aiohttp 0.17; still accepted, with a warning
            force = ContentCoding.deflate if force else ContentCoding.identity
            warnings.warn(
                "Using boolean for force is deprecated #3318", DeprecationWarning, stacklevel=2
            )
        elif force is not None and not isinstance(force, ContentCoding):
            raise AssertionError("force should one of None or ContentCoding")
        self._compression = True
        self._compression_force = force
        self._compression_strategy = strategy

    # -- the head -------------------------------------------------------------
    def _pick_coding(self, request: BaseRequest) -> ContentCoding | None:
        if not self._compression:
            return None
        if self._compression_force is not None:
            return self._compression_force
        return negotiate(request.headers.get("Accept-Encoding", ""))

    def _make_head(
        self, request: BaseRequest, fixed_length: int | None
    ) -> tuple[bytes, bool, int | None]:
        """Finish the headers and serialise the HTTP/1.1 head.

        Returns the head, whether the body is chunked, and how many body bytes may
        follow (None: until the end; 0 for HEAD, 1xx, 204 and 304).
        """
        minor = request.version.minor
        framing = self._complete_head(request, fixed_length, minor)
        head = build_head(minor, self._status, self._reason, self.headers.items())
        return head, framing.chunked, framing.limit

    def _complete_head(
        self, request: BaseRequest, fixed_length: int | None, minor: int | None
    ) -> Framing:
        """Finish the headers: the one place that decides framing, for HTTP/1.*minor*
        or (*minor* None) HTTP/2, where a body of unknown length simply runs to the
        stream's end and the connection's persistence is not the response's to say."""
        headers = self.headers
        method = request.method
        status = self._status
        if self._cookies:
            for morsel in self._cookies.values():
                headers.add("Set-Cookie", morsel.OutputString())
        length = fixed_length
        if length is None:
            cl = headers.get("Content-Length")
            length = int(cl) if cl is not None else None
        if minor is None:
            framing = decide(method, status, 1, True, length, self._chunked)
        else:
            framing = decide(
                method, status, minor, self._resolve_keep_alive(request), length, self._chunked
            )
        complete_fields(
            headers, method, status, framing, length, request.protocol.server_header, minor
        )
        self.will_keep_alive = framing.keep_alive
        return framing

    def _resolve_keep_alive(self, request: BaseRequest) -> bool:
        """The handler's choice, else the request's, unless the connection cannot go on."""
        keep_alive = self.will_keep_alive
        if keep_alive is None:
            keep_alive = request.keep_alive
        return keep_alive and request.protocol.may_keep_alive(request)

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        """Send the head; after this the body is written with :meth:`write`."""
        if self._eof_sent:
            return None
        if self._writer is not None:
            return self._writer
        return self.start_writer(request)

    def start_writer(self, request: BaseRequest) -> PayloadWriter:
        """Make the head and the body's writer; the head leaves now (or, for a
        ``Response``, with its first body bytes). The connection's way to prepare a
        response synchronously; a handler calls :meth:`prepare`."""
        self._req = request
        coding = self._pick_coding(request)
        if coding is not None and coding is not ContentCoding.identity:
            self.headers["Content-Encoding"] = coding.value
            self.headers.popall("Content-Length", None)
        proto = request.protocol
        if request.version.major == 2:
            return self._start_h2(request, cast("StreamConnection", proto), coding)
        head, chunked, length = self._make_head(request, None)
        writer = PayloadWriter(proto, head, chunked=chunked, length=length)
        if coding is not None and coding is not ContentCoding.identity:
            writer.enable_compression(coding.value, self._compression_strategy)
        self._writer = writer
        proto.response_started(self)
        if self._send_head_at_once:
            writer.send_head()
        return writer

    def _start_h2(
        self, request: BaseRequest, stream: StreamConnection, coding: ContentCoding | None
    ) -> PayloadWriter:
        """:meth:`start_writer` on an HTTP/2 stream: the head leaves as fields (a
        HEADERS frame, ending the stream when no body may follow), the body as DATA."""
        framing = self._complete_head(request, None, None)
        writer = PayloadWriter(
            stream, b"", chunked=False, length=framing.limit, ended=stream.end_body
        )
        if coding is not None and coding is not ContentCoding.identity:
            writer.enable_compression(coding.value, self._compression_strategy)
        self._writer = writer
        stream.response_started(self)
        stream.send_fields(h2_fields(self._status, self.headers.items()), framing.limit == 0)
        return writer

    #: The old name, still called by fileresponse.py (whose owner moves it to start_writer).
    _start = start_writer

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write body bytes; waits while the client is slow to read."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise AssertionError(f"data argument must be byte-ish ({type(data)!r})")
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._writer is None:
            raise RuntimeError("Cannot call write() before prepare()")
        await self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer has room (deprecated in aiohttp)."""
        if self._writer is None:
            raise AssertionError("Response has not been started")
        warnings.warn(
            "drain method is deprecated, use await resp.write()", DeprecationWarning, stacklevel=2
        )
        await self._writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        """End the body."""
        if self._eof_sent:
            return
        if self._writer is None:
            raise AssertionError("Response has not been started")
        await self._writer.write_eof(data)
        self._finished()

    def _finished(self) -> None:
        assert self._writer is not None
        self._eof_sent = True
        self._body_length = self._writer.output_size
        self._head_length = self._writer.head_size
        self._writer = None
        self._req = None

    def __repr__(self) -> str:
        if self._eof_sent:
            info = "eof"
        elif self.prepared and self._req is not None:
            info = f"{self._req.method} {self._req.path} "
        else:
            info = "not prepared"
        return f"<{self.__class__.__name__} {self.reason} {info}>"


def _typed(
    body: Any,
    text: str | None,
    headers: LooseHeaders | None,
    content_type: str | None,
    charset: str | None,
) -> tuple[CIMultiDict[str], Any]:
    """``Response``'s headers and body from its arguments, by aiohttp's rules: *text*
    is encoded with the charset given (in *charset* or a ``Content-Type`` header),
    UTF-8 by default, and a ``Content-Type`` header excludes the two arguments."""
    if body is not None and text is not None:
        raise ValueError("body and text are not allowed together")
    real: CIMultiDict[str] = CIMultiDict() if headers is None else CIMultiDict(headers)
    if content_type is not None and "charset" in content_type:
        raise ValueError("charset must not be in content_type argument")
    if text is not None:
        if "Content-Type" in real:
            if content_type or charset:
                raise ValueError(_BOTH_TYPES)
            ctype_charset = parse_content_type(real["Content-Type"])[1].get("charset")
            return real, text.encode(ctype_charset or "utf-8")
        if not isinstance(text, str):
            raise TypeError(f"text argument must be str ({type(text)!r})")
        real["Content-Type"] = (content_type or "text/plain") + "; charset=" + (charset or "utf-8")
        return real, text.encode(charset or "utf-8")
    if "Content-Type" in real:
        if content_type is not None or charset is not None:
            raise ValueError(_BOTH_TYPES)
    elif content_type is not None:
        real["Content-Type"] = (
            content_type + "; charset=" + charset if charset is not None else content_type
        )
    return real, body


class Response(StreamResponse):
    """A response with its whole body in memory."""

    _send_head_at_once = False

    def __init__(
        self,
        *,
        body: Any = None,
        status: int = 200,
        reason: str | None = None,
        text: str | None = None,
        headers: LooseHeaders | None = None,
        content_type: str | None = None,
        charset: str | None = None,
        zlib_executor_size: int | None = None,
        zlib_executor: Any = None,
    ) -> None:
        if headers is None and charset is None and reason is None and type(status) is int:
            # The common cases, without the general path's checks and without a
            # multidict until one is asked for: text (maybe typed), or bytes.
            if type(text) is str and body is None:
                if content_type is None:
                    ctype: str | None = "text/plain; charset=utf-8"
                elif "charset" in content_type:
                    raise ValueError("charset must not be in content_type argument")
                else:
                    ctype = content_type + "; charset=utf-8"
                data = text.encode()
            elif type(body) is bytes and text is None and content_type is None:
                ctype = None
                data = body
            else:
                data = None
            if data is not None:  # the fields StreamResponse.__init__ sets, inline
                self._status = status
                self._reason = REASONS.get(status, "")
                self._body = data
                self._stream = None
                self._ctype = ctype
                self._headers = None
                self._cookies = None
                self._chunked = self._compression = self._eof_sent = False
                self.will_keep_alive = None
                self._body_length = 0
                return
        real, body = _typed(body, text, headers, content_type, charset)
        StreamResponse.__init__(self, status=status, reason=reason)
        self._headers = real
        if body is not None:
            self.body = body

    @property
    def body(self) -> bytes | bytearray | None:
        return self._body

    @body.setter
    def body(self, body: Any) -> None:
        self._stream = None
        if body is None or isinstance(body, bytes | bytearray):
            self._body = body
        elif isinstance(body, memoryview):
            self._body = body.tobytes()
        elif isinstance(body, str):
            self.headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            self._body = body.encode(self.charset or "utf-8")
        elif isinstance(body, io.BytesIO):
            self._body = body.read()  # already in memory: its bytes from the position on
        elif isinstance(body, io.StringIO):
            self.headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            self._body = body.read().encode(self.charset or "utf-8")
        elif isinstance(body, io.IOBase):
            # A file: streamed when sent (see _send_stream), typed and named as aiohttp does.
            _file_headers(self.headers, body)
            self._body = None
            self._stream = body
        elif _is_body_part(body):
            # A multipart part (BodyPartReader), streamed decoded as aiohttp streams it.
            _part_headers(self.headers, body)
            self._body = None
            self._stream = body
        elif hasattr(body, "__aiter__") or _is_writer_function(body):
            # An async iterable, or an @aiohttp.streamer-style ``await body(writer)``.
            self.headers.setdefault("Content-Type", DEFAULT_TYPE)
            self._body = None
            self._stream = body
        elif _is_payload(body):
            # An aiohttp Payload (BytesPayload, JsonPayload, …), used as aiohttp does:
            # its type and headers unless set, its size as the length, its write().
            headers = self.headers
            headers.setdefault("Content-Type", body.content_type)
            for name, value in (body.headers or {}).items():
                headers.setdefault(name, value)
            self._body = None
            self._stream = body
        elif _is_streamer(body):
            self.body = body()  # @aiohttp.streamer's object itself: called with no arguments
            return
        else:
            raise ValueError(f"Unsupported body type {type(body)!r}")
        self._compressed = None

    @property
    def text(self) -> str | None:
        """The body as text; a file body is read for it (blocking, as in aiohttp) and
        left where it was; a streamed body that cannot be read twice: ``TypeError``."""
        if self._body is not None:
            return self._body.decode(self.charset or "utf-8")
        if self._stream is not None:
            return _stream_text(self._stream, self.charset or "utf-8")
        return None

    @text.setter
    def text(self, text: str) -> None:
        if not isinstance(text, str):
            raise AssertionError(f"text argument must be str ({type(text)!r})")
        if self.content_type == "application/octet-stream":
            self.content_type = "text/plain"
        if self.charset is None:
            self.charset = "utf-8"
        self._body = text.encode(self.charset or "utf-8")
        self._compressed = None

    @property
    def content_length(self) -> int | None:
        if self._chunked:
            return None
        if "Content-Length" in self.headers:
            return int(self.headers["Content-Length"])
        if self._compressed is not None:
            return len(self._compressed)
        if self._stream is not None:
            return None  # known once prepared (Content-Length), if at all
        return len(self._body) if self._body is not None else 0

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        raise RuntimeError("Content length is set automatically")

    def render_bytes(self, request: BaseRequest) -> bytes:
        """Head and body as one buffer, for a response the handler returned unprepared
        (the connection's one-write path); :class:`StreamedBody` when the body is a
        stream, which only :meth:`prepare` sends.

        The common case (no cookies, compression or chunking; a status and method
        that carry a body; no Content-Length set by hand) is serialised in one
        pass over the headers; everything else takes :meth:`_render_full`.
        """
        if (
            self._compression
            or self._chunked
            or self._stream is not None  # _render_full refuses it: sent by prepare()
            or self._cookies
            or self._status in EMPTY_STATUS
            # The request's fields are read directly here, on every fast answer: each
            # of its properties costs ~600 instructions a read (callgrind, CPython 3.11).
            or request._method in _BODYLESS_METHODS  # noqa: SLF001 (a property: +600 instructions)
        ):
            return self._render_full(request)
        proto = request._protocol  # noqa: SLF001 (a property: +600 instructions)
        keep_alive = self.will_keep_alive
        if keep_alive is None:
            keep_alive = request._keep_alive  # noqa: SLF001 (a property: +600 instructions)
        if keep_alive and not proto.may_keep_alive(request):
            keep_alive = False  # _resolve_keep_alive, inline: the call costs ~60 ns here
        body = self._body or b""
        version = request._version  # noqa: SLF001 (a property: +600 instructions)
        headers = self._headers
        name: str | None
        value: str | bool
        if headers is None:  # made by a fast path: no multidict yet
            ctype = self._ctype
            if ctype is None:
                name, value = "", bool(body)
            else:
                name, value = "Content-Type", ctype
        elif len(headers) == 1:
            [(name, value)] = headers.items()
        elif not headers:
            name, value = "", bool(body)
        else:
            name, value = None, False
        if name is not None:
            # The commonest responses: one Content-Type header, or none. Their heads are
            # cached, validated once, and completed with the length and the date.
            whole = whole_answer(
                name, value, version, self._status, self._reason, keep_alive,
                proto.server_header, body,
            )  # fmt: skip
            if whole is not None:
                self.will_keep_alive = keep_alive
                self._eof_sent = True
                self._body_length = len(body)
                return whole
        return self._render_headers(request, body, version.minor, keep_alive, proto.server_header)

    def _render_headers(
        self,
        request: BaseRequest,
        body: bytes | bytearray,
        minor: int,
        keep_alive: bool,
        server: str | None,
    ) -> bytes:
        """:meth:`render_bytes` for a response with several headers, in one pass over them."""
        parts = [status_line(minor, self._status, self._reason)]
        seen = 0
        good = GOOD_NAMES
        for name, value in self.headers.items():
            if name not in good or "\r" in value or "\n" in value or "\x00" in value:
                check_header_field(name, value)
            flag = _FLAGS.get(name)
            if flag is None:
                flag = _FLAGS.get(name.title(), 0)
            if flag == _F_LENGTH:
                return self._render_full(request)
            seen |= flag
            parts.append(f"{name}: {value}\r\n")
        # A GET-like status and method with a length known (the checks above): the
        # framing is Content-Length, and steps 5 and 6 of wire.framing decide the rest.
        parts.append(f"Content-Length: {len(body)}\r\n")
        if body and not seen & _F_TYPE:
            parts.append(f"Content-Type: {DEFAULT_TYPE}\r\n")
        if not seen & _F_DATE:
            parts.append(date_line())
        if not seen & _F_SERVER and server is not None:
            parts.append(f"Server: {server}\r\n")
        if not seen & _F_CONNECTION:
            connection = connection_header(keep_alive, minor)
            if connection is not None:
                parts.append(f"Connection: {connection}\r\n")
        parts.append("\r\n")
        self.will_keep_alive = keep_alive
        self._eof_sent = True
        self._body_length = len(body)
        return "".join(parts).encode() + body

    def _coded_body(self, request: BaseRequest) -> bytes:
        """The body as sent: compressed when asked (its length then set, unless chunked).
        :class:`StreamedBody` for a body only :meth:`prepare` can send."""
        if self._stream is not None:
            # A file or async-iterable body cannot leave in one write: the caller
            # falls back to prepare(), which streams it.
            raise StreamedBody("this response's body is sent by prepare()")
        coding = self._pick_coding(request)
        body = bytes(self._body) if self._body else b""
        if coding is not None and coding is not ContentCoding.identity:
            comp = make_compressor(coding.value, self._compression_strategy)
            body = self._compressed = comp.compress(body) + comp.flush()
            headers = self.headers
            if not self._chunked:
                headers["Content-Length"] = str(len(body))
            headers["Content-Encoding"] = coding.value
        return body

    def render_h2(self, request: BaseRequest) -> tuple[list[tuple[str, str]], bytes]:
        """:meth:`render_bytes` for an HTTP/2 stream: the head as fields (``:status``
        first) and the body (empty when none may follow); :class:`StreamedBody` for a
        streamed body."""
        body = self._coded_body(request)
        headers = self.headers
        if not self._chunked and "Content-Length" not in headers:
            size = length_header(request.method, self._status, len(body))
            if size is not None:
                headers["Content-Length"] = str(size)
        framing = self._complete_head(request, None if self._chunked else len(body), None)
        self._eof_sent = True
        if framing.limit == 0:
            body = b""
        self._body_length = len(body)
        return h2_fields(self._status, headers.items()), body

    def _render_full(self, request: BaseRequest) -> bytes:
        """:meth:`render_bytes` for every case: compression, chunking, cookies, empty bodies."""
        body = self._coded_body(request)
        headers = self.headers
        method = request.method
        n = len(body)
        if self._chunked:
            head, chunked, length = self._make_head(request, None)
            if chunked and body:
                body = b"%x\r\n%b\r\n0\r\n\r\n" % (n, body)
            elif chunked:
                body = b"0\r\n\r\n"
        else:
            if "Content-Length" not in headers:
                size = length_header(method, self._status, n)
                if size is not None:
                    headers["Content-Length"] = str(size)
            head, chunked, length = self._make_head(request, n)
        self._eof_sent = True
        if length == 0:
            return head
        self._body_length = len(body)
        return head + body

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        """Send the head (and a body in memory with it); afterwards ``headers`` are the
        headers sent. A streamed body is sent by :meth:`write_eof`, as in aiohttp."""
        if self._eof_sent:
            return None
        if self._writer is not None:
            return self._writer
        if self._stream is not None:
            return self._start_stream(request)
        proto = request.protocol
        proto.response_started(self)
        if request.version.major == 2:
            stream = cast("StreamConnection", proto)
            fields, body = self.render_h2(request)
            stream.send_fields(fields, not body)
            if body:
                stream.write_bytes(body)
                stream.end_body()
            await stream.drain()
            return None
        data = self._render_full(request)
        self._head_length = len(data) - self._body_length
        proto.write_bytes(data)
        await proto.drain()
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        """End the response: for a streamed body, send it (its errors are raised here)."""
        if self._eof_sent:
            return
        writer = self._writer
        if writer is None or self._stream is None:
            raise AssertionError("Response has not been started")
        await self._send_stream(writer)
        await writer.write_eof()
        self._finished()

    def _start_stream(self, request: BaseRequest) -> PayloadWriter:
        """Prepare a file, async-iterable, writer-function or aiohttp ``Payload`` body:
        a length known (a binary file's, a payload's size) is ``Content-Length``, else
        the body is chunked."""
        source = self._stream
        if _is_payload(source):
            length = source.size
        elif isinstance(source, io.IOBase) and not isinstance(source, io.TextIOBase):
            length = _file_length(source)
        else:
            length = None
        headers = self.headers
        if length is not None and not self._chunked and "Content-Length" not in headers:
            headers["Content-Length"] = str(length)
        return StreamResponse.start_writer(self, request)

    async def _send_stream(self, writer: PayloadWriter) -> None:
        """Write the streamed body (a payload writes itself), then close it.

        A binary file goes by ``loop.sendfile`` where it can, else 64 KiB at a time
        read in the loop's executor. Memory holds one piece at a time: the writer
        waits while the client is slow. Nothing is read for a body that may not be
        sent (HEAD, 204, 304).
        """
        source = self._stream
        assert self._req is not None
        loop = self._req.protocol.loop
        charset = self.charset or "utf-8"
        try:
            if writer.length == 0:
                pass
            elif _is_payload(source):
                try:
                    await source.write(writer)
                finally:
                    close = getattr(source, "close", None)
                    if close is not None:
                        await close()
            elif _is_body_part(source):
                while chunk := await source.read_chunk(_PIECE):
                    async for piece in source.decode_iter(chunk):
                        await writer.write(piece)
            elif hasattr(source, "__aiter__"):
                async for piece in source:
                    await writer.write(piece.encode(charset) if isinstance(piece, str) else piece)
            elif not isinstance(source, io.IOBase):
                await source(writer)  # an @aiohttp.streamer body
            elif "Content-Length" in self.headers and not isinstance(source, io.TextIOBase):
                position = await loop.run_in_executor(None, source.tell)
                await writer.write_file(source, position, writer.length or 0, _PIECE)
            else:
                while piece := await loop.run_in_executor(None, source.read, _PIECE):
                    await writer.write(piece.encode(charset) if isinstance(piece, str) else piece)
        finally:
            if isinstance(source, io.IOBase):
                source.close()  # as aiohttp: a file body is closed once sent


if TYPE_CHECKING:  # mypy checks that both keep the connection's interface
    _STREAM_ANSWER: type[Answer] = StreamResponse
    _WHOLE_ANSWER: type[WholeAnswer] = Response


class StreamedBody(Exception):
    """:meth:`Response.render_bytes` was asked for a body that only :meth:`prepare` can send."""


_SENTINEL: Any = object()
_PIECE = 65536  # bytes read from a file body at a time
_NOT_QTEXT = re.compile(r"[^!#-\[\]-~]")  # escaped in a quoted-string (RFC 5322)


def _is_payload(body: Any) -> bool:
    """Whether *body* is shaped as an aiohttp ``Payload`` (without importing aiohttp)."""
    return (
        hasattr(body, "write")
        and hasattr(body, "size")
        and hasattr(body, "content_type")
        and hasattr(body, "headers")
        and not isinstance(body, io.IOBase)
    )


def _is_body_part(body: Any) -> bool:
    """Whether *body* is shaped as a multipart ``BodyPartReader`` (lowserve's or aiohttp's)."""
    return (
        hasattr(body, "read_chunk")
        and hasattr(body, "decode_iter")
        and hasattr(body, "filename")
        and hasattr(body, "name")
    )


def _is_streamer(body: Any) -> bool:
    """Whether *body* is the object ``@aiohttp.streamer`` makes (not its call's result):
    callable, its ``coro`` the decorated function."""
    return callable(body) and inspect.iscoroutinefunction(getattr(body, "coro", None))


def _is_writer_function(body: Any) -> bool:
    """Whether *body* is awaited with the writer (``@aiohttp.streamer``'s shape)."""
    return inspect.iscoroutinefunction(body) or inspect.iscoroutinefunction(
        getattr(body, "__call__", None)  # noqa: B004 (the method's kind is the question)
    )


def _file_headers(headers: CIMultiDict[str], f: io.IOBase) -> None:
    """A file body's ``Content-Type`` and ``Content-Disposition``, unless set, as aiohttp
    gives them: the type from the file's name (text: ``text/plain; charset=utf-8``),
    ``attachment; filename="..."`` when it has a name."""
    name = getattr(f, "name", None)
    filename = None
    if isinstance(name, str) and name and name[0] != "<" and name[-1] != ">":
        filename = os.path.basename(name)
    if isinstance(f, io.TextIOBase):
        ctype = "text/plain; charset=utf-8"
    else:
        ctype = (filename and mimetypes.guess_type(filename)[0]) or DEFAULT_TYPE
    headers.setdefault("Content-Type", ctype)
    if filename:
        headers.setdefault("Content-Disposition", f'attachment; filename="{quote(filename, "")}"')


def _part_headers(headers: CIMultiDict[str], part: Any) -> None:
    """A part body's ``Content-Type`` and ``Content-Disposition`` (its name and filename),
    unless set, as aiohttp gives them."""
    headers.setdefault("Content-Type", DEFAULT_TYPE)
    params = []
    if part.name is not None:
        name = str(part.name)
        if all(" " <= c <= "~" or c == "\t" for c in name):  # RFC 5322 quoted-string
            quoted = _NOT_QTEXT.sub(r"\\\g<0>", name)
            params.append(f'name="{quoted}"')
        else:
            params.append(f"name*=utf-8''{quote(name, '')}")
    if part.filename is not None:
        params.append(f'filename="{quote(str(part.filename), "")}"')
    if params:
        headers.setdefault("Content-Disposition", "; ".join(["attachment", *params]))


def _stream_text(source: Any, charset: str) -> str:
    """A streamed body's text, for ``Response.text``."""
    if _is_body_part(source):
        raise TypeError("a multipart part body has no text before it is sent")
    if isinstance(source, io.IOBase):
        try:
            position: int | None = source.tell()
        except (OSError, ValueError):
            position = None
        data = source.read()
        if position is not None:
            source.seek(position)  # it is sent from there
        return data if isinstance(data, str) else bytes(data).decode(charset)
    decode = getattr(source, "decode", None)
    if callable(decode):  # an aiohttp Payload
        text: str = decode(charset)
        return text
    raise TypeError("a streamed body has no text before it is sent")


def _file_length(f: Any) -> int | None:
    """Bytes left in a binary file from its position, or None when that is unknown."""
    try:
        size: int = os.fstat(f.fileno()).st_size - f.tell()
        return max(0, size)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def json_response(
    data: Any = _SENTINEL,
    *,
    text: str | None = None,
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders | None = None,
    content_type: str = "application/json",
    dumps: Callable[[Any], str] = json.dumps,
) -> Response:
    """A :class:`Response` whose body is *data* serialised as JSON."""
    if data is not _SENTINEL:
        if text or body:
            raise ValueError("only one of data, text, or body should be specified")
        text = dumps(data)
    if body is None and reason is None and headers is None:
        return Response(text=text, status=status, content_type=content_type)
    return Response(
        text=text,
        body=body,
        status=status,
        reason=reason,
        headers=headers,
        content_type=content_type,
    )


def json_bytes_response(
    data: Any = _SENTINEL,
    *,
    dumps: Callable[[Any], bytes],
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders | None = None,
    content_type: str = "application/json",
) -> Response:
    """A :class:`Response` of *data* serialised by a bytes-returning *dumps* (orjson's)."""
    if data is not _SENTINEL:
        if body is not None:
            raise ValueError("only one of data or body should be specified")
        body = dumps(data)
    return Response(
        body=body, status=status, reason=reason, headers=headers, content_type=content_type
    )
