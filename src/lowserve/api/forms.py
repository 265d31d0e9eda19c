"""``request.post()``: urlencoded and multipart/form-data bodies.

Multipart framing is python-multipart's streaming parser; this module only turns
its callbacks into fields. The whole body is bounded by ``client_max_size``.
"""

from __future__ import annotations

import asyncio
import tempfile
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from ..wire.headers import parse_content_type
from .exceptions import HTTPBadRequest, HTTPRequestEntityTooLarge

if TYPE_CHECKING:
    from .request import BaseRequest

__all__ = ["FileField", "parse_form"]

_SPOOL = 1024**2  # a file part past this many bytes is written to disk, as aiohttp's


class FileField:
    """An uploaded file from a ``multipart/form-data`` body."""

    __slots__ = ("content_type", "file", "filename", "headers", "name")

    def __init__(
        self, name: str, filename: str, file: Any, content_type: str, headers: CIMultiDictProxy[str]
    ) -> None:
        self.name = name
        self.filename = filename
        self.file = file
        self.content_type = content_type
        self.headers = headers

    def __repr__(self) -> str:
        return f"<FileField {self.name}={self.filename!r} {self.content_type}>"


async def parse_form(request: BaseRequest) -> MultiDictProxy[Any]:
    """Parse the body of *request* as a form."""
    ctype, params = parse_content_type(request.headers.get("Content-Type"))
    out: MultiDict[Any] = MultiDict()
    max_fields = request.client_max_fields
    if ctype == "application/x-www-form-urlencoded" or (
        ctype == "application/octet-stream" and not request.body_exists
    ):
        data = await request.read()
        charset = request.charset or "utf-8"
        try:
            text = data.rstrip().decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise HTTPBadRequest(text=f"form body not in its charset: {exc}") from None
        try:
            fields = parse_qsl(
                text,
                keep_blank_values=True,
                encoding=charset,  # %XX escapes are bytes in the body's charset, as aiohttp
                max_num_fields=max_fields if max_fields > 0 else None,
            )
        except ValueError:  # past max_num_fields (the only ValueError parse_qsl raises here)
            raise _too_many_fields(max_fields) from None
        out.extend(fields)
    elif ctype == "multipart/form-data":
        boundary = params.get("boundary")
        if not boundary:
            raise HTTPBadRequest(text="multipart/form-data without a boundary")
        limit = request.client_max_size
        declared = request.content.declared
        if limit and declared is not None and declared > limit:
            # Refused from Content-Length, before any byte is read (or 100 Continue sent).
            raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
        await _parse_multipart(request, boundary, out, max_fields)
    return MultiDictProxy(out)


def _too_many_fields(max_fields: int) -> HTTPRequestEntityTooLarge:
    return HTTPRequestEntityTooLarge(
        max_fields, text=f"Maximum number of form fields {max_fields} exceeded."
    )


class _Parts:
    """Collects python-multipart's callbacks into fields.

    A file part goes into a :class:`~tempfile.SpooledTemporaryFile`: memory up to
    ``_SPOOL`` bytes, then a file on disk, as aiohttp's ``post()``. The callbacks are
    synchronous, so a file part's bytes wait in ``pending`` (at most one network
    read's worth) until :meth:`flush` writes them, in the loop's executor once the
    file is on disk.
    """

    def __init__(self, out: MultiDict[Any], max_fields: int) -> None:
        self.out = out
        self.max_fields = max_fields
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.field = bytearray()
        self.value = bytearray()
        self.data = bytearray()
        self.name: str | None = None
        self.filename: str | None = None
        self.file: _Spooled | None = None
        self.files: list[_Spooled] = []

    def begin(self) -> None:
        self.headers = CIMultiDict()
        self.data = bytearray()
        self.file = None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers.add(
            self.field.decode("latin-1").strip(), self.value.decode("utf-8", "replace").strip()
        )
        self.field.clear()
        self.value.clear()

    def headers_done(self) -> None:
        msg = Message()
        msg["content-disposition"] = self.headers.get("Content-Disposition", "")
        name = msg.get_param("name", header="content-disposition")
        self.name = name if isinstance(name, str) else None
        self.filename = msg.get_filename()
        if self.filename is not None:
            self.file = _Spooled()
            self.files.append(self.file)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not None:
            self.file.pending.append(data[start:end])
        else:
            self.data += data[start:end]

    def end(self) -> None:
        if 0 < self.max_fields <= len(self.out):
            raise _too_many_fields(self.max_fields)
        name = self.name
        if name is None:
            raise HTTPBadRequest(text="multipart part without a name")
        ctype, params = parse_content_type(self.headers.get("Content-Type"))
        if self.file is not None and self.filename is not None:
            field = FileField(
                name,
                self.filename,
                self.file.file,  # complete once flush() has run (before post() returns)
                self.headers.get("Content-Type", "application/octet-stream"),
                CIMultiDictProxy(self.headers),
            )
            self.out.add(name, field)
        elif "Content-Type" not in self.headers or ctype.startswith("text/"):
            self.out.add(name, self.data.decode(params.get("charset", "utf-8")))
        else:
            self.out.add(name, bytes(self.data))

    async def flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the file parts' pending bytes."""
        for spooled in self.files:
            if spooled.pending:
                await spooled.write(loop)

    async def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the files of a form that was refused."""
        for spooled in self.files:
            await spooled.run(loop, spooled.file.close)


class _Spooled:
    """A file part: memory up to ``_SPOOL`` bytes, then disk (written off the loop)."""

    __slots__ = ("file", "pending", "size")

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(_SPOOL)  # noqa: SIM115 (FileField owns it)
        self.pending: list[bytes] = []
        self.size = 0

    async def run(self, loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> Any:
        """*fn(*args)* on the file: at once while in memory, in the executor on disk."""
        if self.size > _SPOOL:
            return await loop.run_in_executor(None, fn, *args)
        return fn(*args)

    async def write(self, loop: asyncio.AbstractEventLoop) -> None:
        data = b"".join(self.pending)
        self.pending.clear()
        self.size += len(data)  # counted first: the write that rolls over goes to disk
        await self.run(loop, self.file.write, data)


async def _parse_multipart(
    request: BaseRequest, boundary: str, out: MultiDict[Any], max_fields: int
) -> None:
    parts = _Parts(out, max_fields)
    callbacks: Any = {
        "on_part_begin": parts.begin,
        "on_header_field": parts.header_field,
        "on_header_value": parts.header_value,
        "on_header_end": parts.header_end,
        "on_headers_finished": parts.headers_done,
        "on_part_data": parts.part_data,
        "on_part_end": parts.end,
    }
    limit = request.client_max_size
    loop = asyncio.get_running_loop()
    try:
        parser = MultipartParser(boundary.encode("latin-1"), callbacks)
        total = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            total += len(chunk)
            if limit and total > limit:
                raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            parser.write(chunk)
            await parts.flush(loop)
        parser.finalize()
        for spooled in parts.files:
            await spooled.run(loop, spooled.file.seek, 0)
    except (FormParserError, UnicodeDecodeError, LookupError) as exc:
        await parts.close(loop)
        raise HTTPBadRequest(text=f"malformed multipart body: {exc}") from None
    except BaseException:
        await parts.close(loop)
        raise
