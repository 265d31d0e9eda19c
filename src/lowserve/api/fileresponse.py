"""``FileResponse``: a file from disk, with the validators, conditions and ranges of HTTP.

Decided in :meth:`FileResponse.prepare`, in RFC 9110's order (§13.2.2):

1. The file: a precompressed sibling (``.br``, then ``.gz``) when ``Accept-Encoding``
   takes it, else the file itself, opened without blocking (a FIFO never stalls a
   thread) and kept only if the descriptor is a regular file: a directory, FIFO,
   socket or device is 403 (a sibling that is one is skipped), unreadable 403, missing
   (or a name the system refuses: too long, a NUL byte) 404.
2. Its validators: ``ETag`` (``"<mtime_ns>-<size>"`` in hex, as aiohttp's) and
   ``Last-Modified``.
3. ``If-Match`` failing, else ``If-Unmodified-Since`` failing: 412.
4. ``If-None-Match`` matching: 304 for GET and HEAD (412 otherwise), else
   ``If-Modified-Since`` not older than the file: 304.
5. ``Range`` (one range; ``If-Range`` naming another version voids it): 206 with
   ``Content-Range``, or 416 with ``Content-Range: bytes */<size>``.

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
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..wire.headers import ETAG_ANY, ETag
from .response import LooseHeaders, StreamResponse

if TYPE_CHECKING:
    from .request import BaseRequest
    from .writer import PayloadWriter

__all__ = ["FileResponse"]

_SIBLINGS = (("br", ".br"), ("gzip", ".gz"))


class FileResponse(StreamResponse):
    """Send the file at *path* (aiohttp's ``web.FileResponse``).

    *root* (lowserve's): a folder the file actually opened must lie in once every
    symbolic link is resolved, the ``.gz``/``.br`` sibling included; one outside it is
    404 (a sibling outside is skipped). Give it when *path* comes from the request.
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
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = Path(path)
        self._chunk_size = chunk_size
        self._root = root

    def _open(self, accept_encoding: str) -> tuple[BinaryIO, os.stat_result, str | None]:
        """The file to send (step 1): an open file, its stat, and its content coding."""
        root = None if self._root is None else os.path.realpath(self._root)
        accept = accept_encoding.lower()
        for coding, suffix in _SIBLINGS:
            if coding in accept:
                sibling = self._path.with_name(self._path.name + suffix)
                try:
                    f, st = _open_regular(sibling, root)
                except (OSError, ValueError, _NotRegularFile):
                    continue  # missing, unreadable, outside root or not a regular file
                return f, st, coding
        f, st = _open_regular(self._path, root)
        return f, st, None

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
            f, st, coding = await loop.run_in_executor(
                None, self._open, request.headers.get("Accept-Encoding", "")
            )
        except (PermissionError, IsADirectoryError, _NotRegularFile):
            await self._refuse(request, 403)
            return None
        except (OSError, ValueError):  # missing, a name too long, a NUL byte in it
            await self._refuse(request, 404)
            return None
        try:
            await self._answer(request, f, st, coding)
        finally:
            f.close()
        return None

    async def _answer(
        self, request: BaseRequest, f: BinaryIO, st: os.stat_result, coding: str | None
    ) -> None:
        etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"  # step 2
        method = request.method
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
        offset, count = 0, size
        if "Range" in request.headers and method in ("GET", "HEAD"):  # step 5
            span = self._span(request, etag, st)
            if span is None:
                await self._refuse(request, 416, empty=False, Content_Range=f"bytes */{size}")
                return
            offset, count = span
        headers = self.headers
        ctype, packed = mimetypes.guess_type(self._path.name)
        if packed is not None:  # x.tar.gz itself: its bytes are gzip, not a tar
            ctype = None
        headers.setdefault("Content-Type", ctype or "application/octet-stream")
        if coding is not None:
            headers["Content-Encoding"] = coding
            headers.add("Vary", "Accept-Encoding")
        self.etag = etag  # in aiohttp's order: type, validators, length, ranges
        self.last_modified = st.st_mtime
        headers["Content-Length"] = str(count)
        headers["Accept-Ranges"] = "bytes"
        if self.status == 206:
            headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{size}"
        writer = StreamResponse._start(self, request)
        if method != "HEAD":
            await writer.write_file(f, offset, count, self._chunk_size)
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

    def _span(self, request: BaseRequest, etag: str, st: os.stat_result) -> tuple[int, int] | None:
        """(offset, count) to send for a ``Range`` request (the whole file when the range
        does not apply; 206 when it does), or None when it cannot be satisfied (416)."""
        size = st.st_size
        if self._range(request, etag, st.st_mtime) is None:
            return 0, size
        try:
            rng = request.http_range
        except ValueError:
            return None
        start, stop = rng.start, rng.stop
        if start is not None and start < 0:  # bytes=-N: the last N
            start = max(0, size + start)
        start = start or 0
        stop = size if stop is None else min(stop, size)
        if start >= size or start >= stop:
            return None
        self.set_status(206)
        return start, stop - start

    @staticmethod
    def _range(request: BaseRequest, etag: str, mtime: float) -> bool | None:
        """True when the Range applies; None when ``If-Range`` names another version."""
        raw = request.headers.get("If-Range")
        if raw is None:
            return True
        raw = raw.strip()
        if raw.startswith('"'):
            return True if raw == f'"{etag}"' else None
        since = request.if_range
        return True if since is not None and int(mtime) <= since.timestamp() else None


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
