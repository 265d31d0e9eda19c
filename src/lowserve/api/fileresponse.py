"""``FileResponse``: a file from disk, with the validators, conditions and ranges of HTTP.

Decided in :meth:`FileResponse.prepare`, in RFC 9110's order (§13.2.2):

1. The file: the variant ``Accept-Encoding`` rates highest of the ``.br`` and ``.gz``
   siblings and the file itself (q-values, ``*`` and ``identity`` as RFC 9110 §12.5.3
   says; ``br`` before ``gzip`` at equal q), opened without blocking (a FIFO never
   stalls a thread) and kept only if the descriptor is a regular file: a directory,
   FIFO, socket or device is 403 (a sibling that is one is skipped), unreadable 403,
   missing (or a name the system refuses: too long, a NUL byte) 404. When a sibling
   exists every answer says ``Vary: Accept-Encoding``, 304s included.
2. Its validators: ``ETag`` (``"<mtime_ns>-<size>"`` in hex, as aiohttp's) and
   ``Last-Modified``.
3. ``If-Match`` failing, else ``If-Unmodified-Since`` failing: 412.
4. ``If-None-Match`` matching: 304 for GET and HEAD (412 otherwise), else
   ``If-Modified-Since`` not older than the file: 304.
5. ``Range`` in ``bytes`` (any other unit, or ``If-Range`` naming another version,
   voids it): overlapping and adjacent spans joined, one span is a 206 with
   ``Content-Range``, several a 206 ``multipart/byteranges``; more than *max_ranges*
   spans (16), or several of a content-coded variant, send the whole file (200); none
   satisfiable, or a malformed header, is 416 with ``Content-Range: bytes */<size>``.

The bytes go out with ``loop.sendfile`` when nothing transforms them, else are read
``chunk_size`` at a time in the loop's executor and written with back-pressure
(:meth:`~lowserve.api.writer.PayloadWriter.write_file`): memory holds one chunk,
whatever the file's size.
"""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..wire.headers import ETAG_ANY, ETag, format_etag
from ..wire.representation import MAX_RANGES, accepted_codings, byte_ranges
from .response import LooseHeaders, StreamResponse

if TYPE_CHECKING:
    from .request import BaseRequest
    from .writer import PayloadWriter

__all__ = ["FileResponse"]

_SIBLINGS = {"br": ".br", "gzip": ".gz"}
_OFFERED = ("br", "gzip", "identity")  # br first: at equal q the smaller wins


class FileResponse(StreamResponse):
    """Send the file at *path* (aiohttp's ``web.FileResponse``).

    *root* (lowserve's): a folder the file actually opened must lie in once every
    symbolic link is resolved, the ``.gz``/``.br`` sibling included; one outside it is
    404 (a sibling outside is skipped). Give it when *path* comes from the request.
    *max_ranges*: how many spans a ``Range`` may ask for, once overlapping and
    adjacent ones are joined; past it the whole file is sent (200).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_size: int = 256 * 1024,
        status: int = 200,
        reason: str | None = None,
        headers: LooseHeaders | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        max_ranges: int = MAX_RANGES,
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = Path(path)
        self._chunk_size = chunk_size
        self._root = root
        self._max_ranges = max_ranges

    def _sibling(self, coding: str) -> Path:
        return self._path.with_name(self._path.name + _SIBLINGS[coding])

    def _open(
        self, accept_encoding: str | None
    ) -> tuple[BinaryIO, os.stat_result, str | None, bool]:
        """The file to send (step 1): an open file, its stat, its content coding, and
        whether the answer depends on ``Accept-Encoding`` (a sibling exists: ``Vary``)."""
        root = None if self._root is None else os.path.realpath(self._root)
        for coding in accepted_codings(accept_encoding, _OFFERED):
            if coding == "identity":
                break
            try:
                f, st = _open_regular(self._sibling(coding), root)
            except (OSError, ValueError, _NotRegularFile):
                continue  # missing, unreadable, outside root or not a regular file
            return f, st, coding, True
        f, st = _open_regular(self._path, root)
        return f, st, None, any(os.path.isfile(self._sibling(c)) for c in _SIBLINGS)

    async def _refuse(
        self, request: BaseRequest, status: int, *, empty: bool = True, **headers: str
    ) -> None:
        """Answer *status* with no body (as aiohttp: 416's is chunked, *empty* False)."""
        self.set_status(status)
        for name, value in headers.items():
            self.headers[name.replace("_", "-")] = value
        if empty:
            self.content_length = 0
        await StreamResponse.prepare(self, request)
        await self.write_eof()

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        if self._eof_sent:
            return None
        if self._writer is not None:
            return self._writer
        loop = asyncio.get_running_loop()
        try:
            f, st, coding, varies = await loop.run_in_executor(
                None, self._open, request.headers.get("Accept-Encoding")
            )
        except (PermissionError, IsADirectoryError, _NotRegularFile):
            await self._refuse(request, 403)
            return None
        except (OSError, ValueError):  # missing, a name too long, a NUL byte in it
            await self._refuse(request, 404)
            return None
        try:
            if varies:
                self._vary()
            await self._answer(request, f, st, coding)
        finally:
            f.close()
        return None

    def _vary(self) -> None:
        """Add ``Vary: Accept-Encoding`` unless the headers say so already."""
        named = ",".join(self.headers.getall("Vary", ())).lower()
        if "accept-encoding" not in named and named.strip() != "*":
            self.headers.add("Vary", "Accept-Encoding")

    async def _answer(
        self, request: BaseRequest, f: BinaryIO, st: os.stat_result, coding: str | None
    ) -> None:
        etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"  # step 2
        refusal = self._precondition(request, etag, int(st.st_mtime))  # steps 3 and 4
        if refusal == 304:
            self.set_status(304)
            self.etag = etag
            self.last_modified = st.st_mtime
            await StreamResponse.prepare(self, request)
            await self.write_eof()
            return
        if refusal is not None:
            await self._refuse(request, refusal)
            return
        size = st.st_size
        spans = self._spans(request, etag, st, coding)  # step 5
        if spans == []:
            await self._refuse(request, 416, empty=False, Content_Range=f"bytes */{size}")
            return
        headers = self.headers
        ctype, packed = mimetypes.guess_type(self._path.name)
        if packed is not None:  # x.tar.gz itself: its bytes are gzip, not a tar
            ctype = None
        headers.setdefault("Content-Type", ctype or "application/octet-stream")
        if coding is not None:
            headers["Content-Encoding"] = coding
        self.etag = etag  # in aiohttp's order: type, validators, length, ranges
        self.last_modified = st.st_mtime
        if spans is not None and len(spans) > 1:
            await self._send_parts(request, f, size, spans)
            return
        offset, stop = (0, size) if spans is None else spans[0]
        headers["Content-Length"] = str(stop - offset)
        headers["Accept-Ranges"] = "bytes"
        if spans is not None:
            self.set_status(206)
            headers["Content-Range"] = f"bytes {offset}-{stop - 1}/{size}"
        writer = self._start(request)
        if request.method != "HEAD":
            await writer.write_file(f, offset, stop - offset, self._chunk_size)
        await writer.write_eof()
        self._finished()

    async def _send_parts(
        self, request: BaseRequest, f: BinaryIO, size: int, spans: list[tuple[int, int]]
    ) -> None:
        """206 ``multipart/byteranges``: each span a part with its ``Content-Range``."""
        headers = self.headers
        boundary = secrets.token_hex(16)
        part_type = headers["Content-Type"]
        heads = [
            f"\r\n--{boundary}\r\nContent-Type: {part_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n".encode()
            for start, stop in spans
        ]
        heads[0] = heads[0][2:]  # the first delimiter needs no CRLF before it
        tail = f"\r\n--{boundary}--\r\n".encode()
        length = sum(map(len, heads)) + sum(stop - start for start, stop in spans) + len(tail)
        self.set_status(206)
        headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
        headers["Content-Length"] = str(length)
        headers["Accept-Ranges"] = "bytes"
        writer = self._start(request)
        if request.method != "HEAD":
            for head, (start, stop) in zip(heads, spans, strict=True):
                await writer.write(head)
                await writer.write_file(f, start, stop - start, self._chunk_size)
            await writer.write(tail)
        await writer.write_eof()
        self._finished()

    @staticmethod
    def _precondition(request: BaseRequest, etag: str, modified: int) -> int | None:
        """412 or 304 when the request's conditions say so (steps 3 and 4), else None."""
        method = request.method
        if_match = request.if_match  # step 3
        ius = request.if_unmodified_since
        if (if_match is not None and not _matches(etag, if_match, weak=False)) or (
            if_match is None and ius is not None and modified > ius.timestamp()
        ):
            return 412
        if_none_match = request.if_none_match  # step 4
        ims = request.if_modified_since
        if (if_none_match is not None and _matches(etag, if_none_match, weak=True)) or (
            if_none_match is None
            and ims is not None
            and method in ("GET", "HEAD")
            and modified <= ims.timestamp()
        ):
            return 304 if method in ("GET", "HEAD") else 412
        return None

    def _spans(
        self, request: BaseRequest, etag: str, st: os.stat_result, coding: str | None
    ) -> list[tuple[int, int]] | None:
        """The spans a ``Range`` asks for (step 5); None to send the whole file, [] for 416.

        Ignored: on a method other than GET and HEAD, when ``If-Range`` names another
        version, and for several spans of a content-coded variant (a multipart body
        cannot carry the coding of the file its parts come from).
        """
        raw = request.headers.get("Range")
        if raw is None or request.method not in ("GET", "HEAD"):
            return None
        if not self._range_applies(request, etag, st.st_mtime):
            return None
        spans = byte_ranges(raw, st.st_size, self._max_ranges)
        if spans is not None and len(spans) > 1 and coding is not None:
            return None
        return spans

    @staticmethod
    def _range_applies(request: BaseRequest, etag: str, mtime: float) -> bool:
        """False when ``If-Range`` names another version than the file's."""
        raw = request.headers.get("If-Range")
        if raw is None:
            return True
        raw = raw.strip()
        if raw.startswith('"'):
            return raw == format_etag(ETag(etag))  # a strong match only
        since = request.if_range
        return since is not None and int(mtime) <= since.timestamp()


class _NotRegularFile(Exception):
    """The path names a directory, a FIFO, a socket or a device: answered 403."""


#: Opening never waits: a FIFO opened for reading without O_NONBLOCK waits for a writer.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def _open_regular(path: Path, root: str | None) -> tuple[BinaryIO, os.stat_result]:
    """Open *path* for reading, and keep it only if the descriptor is a regular file
    (else :class:`_NotRegularFile`) whose real path lies in *root* (else 404's error).

    The type is read from the open descriptor (``fstat``), never from the name, so what
    is checked is what is read. With *root*, the real path (every link resolved) is
    checked and opened with ``O_NOFOLLOW``, and where ``/proc`` names the descriptor's
    path that is checked again, so a link swapped in meanwhile leads nowhere.
    """
    name = os.fspath(path)
    flags = _OPEN_FLAGS
    if root is not None:
        name = os.path.realpath(name)
        if not _within(name, root):
            raise FileNotFoundError(errno.ENOENT, "outside the root", os.fspath(path))
        flags |= os.O_NOFOLLOW
    fd = os.open(name, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _NotRegularFile(path)
        if root is not None and not _within(_opened_path(fd, name), root):
            raise FileNotFoundError(errno.ENOENT, "outside the root", os.fspath(path))
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True), st
    except BaseException:
        os.close(fd)
        raise


def _within(name: str, root: str) -> bool:
    """Whether the absolute *name* is *root* or under it."""
    return name == root or name.startswith(root.rstrip(os.sep) + os.sep)


def _opened_path(fd: int, name: str) -> str:
    """The path the kernel holds for *fd* (Linux's ``/proc``), else *name*."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return name


def _matches(etag: str, tags: tuple[ETag, ...], *, weak: bool) -> bool:
    if len(tags) == 1 and tags[0].value == ETAG_ANY:
        return True
    return any(t.value == etag for t in tags if weak or not t.is_weak)
