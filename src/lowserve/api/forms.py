"""``request.post()``: urlencoded and multipart/form-data bodies.

Multipart framing is python-multipart's streaming parser; this module only turns
its callbacks into fields. The whole body is bounded by ``client_max_size``.
"""

from __future__ import annotations

import io
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
        text = data.rstrip().decode(charset)
        try:
            fields = parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields or None)
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
    """Collects python-multipart's callbacks into fields."""

    def __init__(self, out: MultiDict[Any], max_fields: int) -> None:
        self.out = out
        self.max_fields = max_fields
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.field = bytearray()
        self.value = bytearray()
        self.data = io.BytesIO()

    def begin(self) -> None:
        self.headers = CIMultiDict()
        self.data = io.BytesIO()

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

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self.data.write(data[start:end])

    def end(self) -> None:
        if self.max_fields and len(self.out) >= self.max_fields:
            raise _too_many_fields(self.max_fields)

        msg = Message()
        msg["content-disposition"] = self.headers.get("Content-Disposition", "")
        name = msg.get_param("name", header="content-disposition")
        filename = msg.get_filename()
        if not isinstance(name, str):
            raise HTTPBadRequest(text="multipart part without a name")
        ctype, params = parse_content_type(self.headers.get("Content-Type"))
        if filename is not None:
            self.data.seek(0)
            self.out.add(
                name,
                FileField(
                    name,
                    filename,
                    self.data,
                    self.headers.get("Content-Type", "application/octet-stream"),
                    CIMultiDictProxy(self.headers),
                ),
            )
        elif "Content-Type" not in self.headers or ctype.startswith("text/"):
            self.out.add(name, self.data.getvalue().decode(params.get("charset", "utf-8")))
        else:
            self.out.add(name, self.data.getvalue())


async def _parse_multipart(
    request: BaseRequest, boundary: str, out: MultiDict[Any], max_fields: int
) -> None:
    parts = _Parts(out, max_fields)
    callbacks: Any = {
        "on_part_begin": parts.begin,
        "on_header_field": parts.header_field,
        "on_header_value": parts.header_value,
        "on_header_end": parts.header_end,
        "on_part_data": parts.part_data,
        "on_part_end": parts.end,
    }
    limit = request.client_max_size
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
        parser.finalize()
    except (FormParserError, UnicodeDecodeError, LookupError) as exc:
        raise HTTPBadRequest(text=f"malformed multipart body: {exc}") from None
