"""``request.multipart()``: aiohttp's streaming ``MultipartReader`` over python-multipart.

aiohttp's API is pulled (``await reader.next()``, ``await part.read_chunk()``);
python-multipart's parser is pushed (callbacks). Here the reader feeds the parser one
piece of the body at a time and queues the events that piece produced, so memory holds
at most one body piece's worth of events, whatever the body's size. A part whose type
is ``multipart/*`` is read as a nested :class:`MultipartReader` over that part's bytes.

Bounds: ``part.read()`` (and ``text()``, ``json()``, ``form()``) stops at
``client_max_size`` bytes (413), and a body holding more than ``client_max_fields``
parts is refused (413), as ``post()`` is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import quopri
from collections import deque
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from typing import Any, Protocol
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from ..wire.codings import BodyDecoder
from ..wire.errors import WireError
from ..wire.headers import parse_content_type
from .exceptions import HTTPBadRequest, HTTPRequestEntityTooLarge

__all__ = ["BodyPartReader", "MultipartReader"]

_PIECE = 65536
_CODINGS = ("gzip", "x-gzip", "deflate")  # as aiohttp's, and gzip's old name


class _Source(Protocol):
    async def readany(self) -> bytes: ...


class MultipartReader:
    """The parts of a ``multipart/*`` body, one at a time (aiohttp's ``MultipartReader``)."""

    def __init__(
        self,
        headers: CIMultiDictProxy[str] | CIMultiDict[str],
        content: _Source,
        *,
        max_size: int = 0,
        max_parts: int = 0,
    ) -> None:
        self.headers = headers
        ctype, params = parse_content_type(headers.get("Content-Type"))
        boundary = params.get("boundary")
        if not ctype.startswith("multipart/") or not boundary:
            raise HTTPBadRequest(text=f"not a multipart body with a boundary: {ctype!r}")
        self._content = content
        self._max_size = max_size
        self._max_parts = max_parts
        # RFC 7578 §4.8: a form-data part's Content-Encoding is not applied (as aiohttp)
        self._form_data = ctype == "multipart/form-data"
        self._parts = 0
        self._events: deque[tuple[str, bytes]] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._eof = False
        self._last: BodyPartReader | MultipartReader | None = None
        self._in_part = False  # part_data() has more of the last part to give
        push = self._events.append
        callbacks: Any = {
            "on_part_begin": lambda: push(("begin", b"")),
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: push(("headers", b"")),
            "on_part_data": lambda d, s, e: push(("data", bytes(d[s:e]))),
            "on_part_end": lambda: push(("end", b"")),
        }
        self._parser = MultipartParser(boundary.encode("latin-1"), callbacks)

    def _header_end(self) -> None:
        self._events.append(("header", bytes(self._field) + b"\0" + bytes(self._value)))
        self._field.clear()
        self._value.clear()

    async def _event(self) -> tuple[str, bytes]:
        """The next parser event, feeding the parser from the body as needed."""
        while not self._events:
            if self._eof:
                return "eof", b""
            chunk = await self._content.readany()
            try:
                if chunk:
                    self._parser.write(chunk)
                else:
                    self._eof = True
                    self._parser.finalize()
            except FormParserError as exc:
                raise HTTPBadRequest(text=f"malformed multipart body: {exc}") from None
        return self._events.popleft()

    def at_eof(self) -> bool:
        return self._eof and not self._events

    async def part_data(self) -> bytes:
        """The next bytes of the part :meth:`next` returned last, b"" once it has ended
        (or the body has): what that part's :meth:`BodyPartReader.readany` reads."""
        while self._in_part:
            kind, data = await self._event()
            if kind != "data":
                self._in_part = False  # "end", or "eof" when the body ended early
            elif data:
                return data
        return b""

    async def next(self) -> BodyPartReader | MultipartReader | None:
        """The next part (a nested reader for a ``multipart/*`` part), or None at the end."""
        if self._last is not None:
            await self._last.release()
            self._last = None
        self._in_part = False
        kind, data = await self._event()
        while kind not in ("begin", "eof"):
            kind, data = await self._event()
        if kind == "eof":
            return None
        self._parts += 1
        if 0 < self._max_parts < self._parts:
            raise HTTPRequestEntityTooLarge(
                self._max_parts, text=f"Maximum number of form fields {self._max_parts} exceeded."
            )
        headers: CIMultiDict[str] = CIMultiDict()
        while True:
            kind, data = await self._event()
            if kind == "header":
                name, _, value = data.partition(b"\0")
                headers.add(
                    name.decode("latin-1").strip(), value.decode("utf-8", "replace").strip()
                )
            elif kind == "headers":
                break
            else:
                raise HTTPBadRequest(text="malformed multipart body: a part without headers")
        self._in_part = True
        part = BodyPartReader(
            CIMultiDictProxy(headers), self, max_size=self._max_size, form_data=self._form_data
        )
        if parse_content_type(headers.get("Content-Type"))[0].startswith("multipart/"):
            self._last = MultipartReader(part.headers, part, max_size=self._max_size)
        else:
            self._last = part
        return self._last

    async def release(self) -> None:
        """Skip the rest of the body."""
        while await self.next() is not None:
            pass

    def __aiter__(self) -> AsyncIterator[BodyPartReader | MultipartReader]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BodyPartReader | MultipartReader]:
        while (part := await self.next()) is not None:
            yield part


class BodyPartReader:
    """One part of a multipart body (aiohttp's ``BodyPartReader``)."""

    chunk_size = 8192

    def __init__(
        self,
        headers: CIMultiDictProxy[str],
        reader: MultipartReader,
        *,
        max_size: int = 0,
        form_data: bool = False,
    ) -> None:
        self.headers = headers
        self._reader = reader
        self._max_size = max_size
        self._form_data = form_data
        self._buffer = b""
        self._done = False
        msg = Message()
        msg["content-disposition"] = headers.get("Content-Disposition", "")
        name = msg.get_param("name", header="content-disposition")
        self.name: str | None = name if isinstance(name, str) else None
        self.filename: str | None = msg.get_filename()

    def at_eof(self) -> bool:
        return self._done and not self._buffer

    async def readany(self) -> bytes:
        """The next bytes of this part as they arrive; b"" at its end."""
        if self._buffer:
            data, self._buffer = self._buffer, b""
            return data
        if self._done:
            return b""
        data = await self._reader.part_data()
        self._done = not data
        return data

    async def read_chunk(self, size: int = chunk_size) -> bytes:
        """At most *size* bytes of this part; b"" at its end."""
        data = self._buffer or await self.readany()
        self._buffer = b""
        if len(data) > size:
            data, self._buffer = data[:size], data[size:]
        return data

    async def read(self, *, decode: bool = False) -> bytes:
        """The whole part (bounded by ``client_max_size``); *decode* applies its
        ``Content-Transfer-Encoding`` and ``Content-Encoding``."""
        data = bytearray()
        while chunk := await self.readany():
            data += chunk
            if self._max_size and len(data) > self._max_size:
                raise HTTPRequestEntityTooLarge(max_size=self._max_size, actual_size=len(data))
        return self.decode(bytes(data)) if decode else bytes(data)

    async def readline(self) -> bytes:
        """The next line of this part, with its line ending; b"" at the part's end.
        A line longer than ``client_max_size`` is refused (413)."""
        line = bytearray()
        while True:
            data = self._buffer or await self.readany()
            self._buffer = b""
            if not data:
                return bytes(line)
            end = data.find(b"\n")
            if end >= 0:
                line += data[: end + 1]
                self._buffer = data[end + 1 :]
                return bytes(line)
            line += data
            if self._max_size and len(line) > self._max_size:
                raise HTTPRequestEntityTooLarge(max_size=self._max_size, actual_size=len(line))

    def decode(self, data: bytes) -> bytes:
        """Undo the part's transfer encoding (base64, quoted-printable) and content coding
        (gzip; deflate raw as aiohttp's, or zlib-wrapped; not in ``multipart/form-data``,
        as RFC 7578 says) with :class:`~lowserve.wire.codings.BodyDecoder`: decoded output
        past ``client_max_size`` is refused (413), an unknown coding is 400."""
        return b"".join(self._decoded(data))

    async def decode_iter(self, data: bytes) -> AsyncIterator[bytes]:
        """:meth:`decode`, as pieces of at most 64 KiB, yielding to the loop between
        them (aiohttp offloads large ones to a thread; a piece at a time is as fair)."""
        for piece in self._decoded(data):
            yield piece
            await asyncio.sleep(0)

    def _decoded(self, data: bytes) -> Iterator[bytes]:
        cte = self.headers.get("Content-Transfer-Encoding", "").lower()
        coding = "" if self._form_data else self.headers.get("Content-Encoding", "").lower()
        try:
            if cte == "base64":
                data = base64.b64decode(data)
            elif cte == "quoted-printable":
                data = quopri.decodestring(data)
        except (binascii.Error, ValueError) as exc:
            raise HTTPBadRequest(text=f"cannot decode a multipart part: {exc}") from None
        if coding in ("", "identity"):
            yield data
            return
        if coding not in _CODINGS:
            raise HTTPBadRequest(
                text=f"cannot decode a multipart part: unknown content coding {coding!r}"
            )
        decoder = BodyDecoder(coding, self._max_size, "a multipart part")
        try:
            yield from decoder.pieces(data, _PIECE)
            decoder.finish()
        except WireError as err:
            if err.status == 413:
                raise HTTPRequestEntityTooLarge(
                    max_size=self._max_size, actual_size=decoder.total
                ) from None
            raise HTTPBadRequest(text=err.detail) from None

    def get_charset(self, default: str = "utf-8") -> str:
        return parse_content_type(self.headers.get("Content-Type"))[1].get("charset", default)

    async def text(self, *, encoding: str | None = None) -> str:
        return (await self.read(decode=True)).decode(encoding or self.get_charset())

    async def json(self, *, encoding: str | None = None) -> Any:
        data = await self.read(decode=True)
        return json.loads(data.decode(encoding or self.get_charset())) if data else None

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        data = await self.read(decode=True)
        return parse_qsl(
            data.rstrip().decode(encoding or self.get_charset()), keep_blank_values=True
        )

    async def release(self) -> None:
        """Skip the rest of this part."""
        while await self.readany():
            pass
