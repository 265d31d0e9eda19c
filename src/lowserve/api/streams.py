"""The request body stream: ``request.content``.

The connection feeds decoded body bytes in (:meth:`BodyStream.feed_data`) and the
handler reads them out. Two invariants hold:

* The buffer is bounded, by aiohttp's marks: past twice ``read_bufsize`` unread
  bytes the connection stops reading from the socket, and resumes once the
  handler has read it below ``read_bufsize``.
* ``100 Continue`` is sent at most once, when a handler first waits for body bytes
  that a client is holding back (``Expect: 100-continue``).
* Memory follows the bytes buffered, not how they were cut: small pieces (a
  chunked body of 1-byte chunks) are joined into one ``bytearray`` as they arrive,
  and a chunk's end costs 8 bytes (an ``array`` entry) only until it is read past.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import BodyOwner

__all__ = ["EMPTY_STREAM", "BodyStream", "EmptyStream"]

_SMALL = 512  # pieces shorter than this are joined ...
_JOINED = 16384  # ... into bytearrays of about this size


class BodyStream:
    """An asynchronous reader of one request body (aiohttp's ``StreamReader`` API)."""

    __slots__ = (
        "_buffer",
        "_chunk_ends",
        "_chunk_first",
        "_eof",
        "_exception",
        "_high_water",
        "_joining",
        "_low_water",
        "_offset",
        "_on_first_wait",
        "_paused",
        "_protocol",
        "_size",
        "_waiter",
        "declared",
        "total_bytes",
    )

    def __init__(
        self,
        protocol: BodyOwner,
        limit: int,
        on_first_wait: Callable[[], None] | None = None,
        declared: int | None = None,
    ) -> None:
        self._protocol = protocol
        #: The Content-Length the client declared (None for chunked bodies).
        self.declared = declared
        # aiohttp's StreamReader(limit) marks: reading pauses past twice the limit
        # (read_bufsize) unread, and resumes below it.
        self._low_water = limit if limit > 0 else 1
        self._high_water = 2 * self._low_water
        self._buffer: deque[bytes | bytearray] = deque()
        #: The bytearray small pieces are joined into (always the buffer's last piece).
        self._joining: bytearray | None = None
        #: Where each chunk of a chunked body ends (in total_bytes), made by its first
        #: chunk; entries before _chunk_first have been read past.
        self._chunk_ends: array[int] | None = None
        self._chunk_first = 0
        self._size = 0
        self._offset = 0  # bytes of _buffer[0] already read
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._on_first_wait = on_first_wait
        self.total_bytes = 0

    def __repr__(self) -> str:
        return f"<BodyStream {self._size} bytes{' eof' if self._eof else ''}>"

    # -- the connection's side --------------------------------------------------
    def feed_data(self, data: bytes) -> None:
        if not data or self._eof:
            return
        n = len(data)
        if n < _SMALL:
            # Small pieces are joined into one bytearray, the buffer's last piece: a
            # 1-byte chunk then costs a byte, not a ~40-byte bytes object.
            joining = self._joining
            if joining is not None and len(joining) < _JOINED:
                joining += data
            else:
                self._joining = joining = bytearray(data)
                self._buffer.append(joining)
        else:
            self._joining = None
            self._buffer.append(data)
        self._size += n
        self.total_bytes += n
        if self._waiter is not None:
            self._wake()
        if self._size > self._high_water and not self._paused:
            self._paused = True
            self._protocol.pause_for_body(True)

    def end_http_chunk(self) -> None:
        """Mark the end of a chunk of a chunked body (for :meth:`readchunk`)."""
        ends = self._chunk_ends
        if ends is None:
            ends = self._chunk_ends = array("Q")
        if not ends or ends[-1] != self.total_bytes:  # empty chunks end nothing new
            ends.append(self.total_bytes)

    def feed_eof(self) -> None:
        self._eof = True
        self._on_first_wait = None
        if self._waiter is not None:
            self._wake()

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        self._on_first_wait = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)

    @property
    def continue_pending(self) -> bool:
        """True while ``100 Continue`` is owed but was never needed."""
        return self._on_first_wait is not None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _consumed(self, n: int) -> None:
        self._size -= n
        if self._chunk_ends is not None:
            self._forget_chunk_ends()
        if self._paused and self._size < self._low_water:
            self._paused = False
            self._protocol.pause_for_body(False)

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        if self._waiter is not None:
            raise RuntimeError("another coroutine is already waiting for the request body")
        if self._on_first_wait is not None:
            hook, self._on_first_wait = self._on_first_wait, None
            hook()
        waiter = self._waiter = self._protocol.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    # -- the handler's side ---------------------------------------------------
    def exception(self) -> BaseException | None:
        return self._exception

    def is_eof(self) -> bool:
        return self._eof

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks, aiohttp's: reading pauses above high (twice
        ``read_bufsize``) and resumes below low (``read_bufsize``)."""
        return self._low_water, self._high_water

    @property
    def reading_paused(self) -> bool:
        """True while this stream holds its connection's reading paused."""
        return self._paused

    def take_whole(self, limit: int) -> bytes | None:
        """The whole body, when it has all arrived without error within *limit* bytes
        (0: no limit); None when :meth:`read` has to wait or refuse."""
        if not self._eof or self._exception is not None or (limit and self._size > limit):
            return None
        return self._take(-1) if self._buffer else b""

    def at_eof(self) -> bool:
        """True when the body has ended and every byte has been read."""
        return self._eof and not self._buffer

    async def wait_eof(self) -> None:
        while not self._eof:
            await self._wait()

    def _take(self, n: int) -> bytes:
        """Remove up to *n* bytes (all buffered bytes if n < 0) from the buffer.

        A piece read in part stays whole in the buffer with ``_offset`` past the read
        bytes: small reads from a large piece copy only what they return.
        """
        buf = self._buffer
        off = self._offset
        self._joining = None  # a read may take it: the next small piece starts anew
        if n < 0 or n >= self._size:
            if off:
                buf[0] = buf[0][off:]
            data = buf.popleft() if len(buf) == 1 else b"".join(buf)
            buf.clear()
            off = 0
        else:
            parts = []
            need = n
            while need:
                head = buf[0]
                avail = len(head) - off
                if avail <= need:
                    parts.append(head[off:] if off else head)
                    buf.popleft()
                    off = 0
                    need -= avail
                else:
                    parts.append(head[off : off + need])
                    off += need
                    need = 0
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._offset = off
        self._consumed(len(data))
        return data if type(data) is bytes else bytes(data)

    def discard(self) -> None:
        """Drop every buffered byte (the handler left them unread)."""
        self._buffer.clear()
        self._joining = None
        self._offset = 0
        self._consumed(self._size)

    async def read(self, n: int = -1) -> bytes:
        """Read up to *n* bytes, or (n = -1) everything up to the end of the body."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while True:
                while not self._buffer and not self._eof:
                    await self._wait()
                if self._buffer:
                    parts.append(self._take(-1))
                if self._eof and not self._buffer:
                    return b"".join(parts)
        while not self._buffer and not self._eof:
            await self._wait()
        return self._take(n)

    async def readany(self) -> bytes:
        """Whatever is buffered now, waiting for at least one byte (b"" at the end)."""
        while not self._buffer and not self._eof:
            await self._wait()
        return self._take(-1)

    async def readexactly(self, n: int) -> bytes:
        """Exactly *n* bytes; ``asyncio.IncompleteReadError`` if the body ends first."""
        parts: list[bytes] = []
        need = n
        while need > 0:
            while not self._buffer and not self._eof:
                await self._wait()
            if not self._buffer:
                partial = b"".join(parts)
                raise asyncio.IncompleteReadError(partial, n)
            piece = self._take(need)
            parts.append(piece)
            need -= len(piece)
        return b"".join(parts)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including *separator*, or to the end of the body."""
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        sep_len = len(separator)
        seen = bytearray()
        while True:
            while not self._buffer and not self._eof:
                await self._wait()
            if not self._buffer:
                return bytes(seen)
            head = self._buffer[0]
            off = self._offset
            if seen and sep_len > 1:
                # A separator split between the previous piece and this one.
                kept = min(sep_len - 1, len(seen))
                j = (bytes(seen[-kept:]) + head[off : off + sep_len - 1]).find(separator)
                if 0 <= j < kept:
                    used = j + sep_len - kept
                    seen += head[off : off + used]
                    self._take(used)
                    return bytes(seen)
            idx = head.find(separator, off)
            end = len(head) if idx < 0 else idx + sep_len
            seen += memoryview(head)[off:end]  # only the bytes taken are copied
            self._take(end - off)
            if idx >= 0:
                return bytes(seen)
            if len(seen) > self._low_water * 4:
                raise ValueError("Line is too long")

    async def readline(self) -> bytes:
        """One line, ending in ``\\n`` unless the body ends first."""
        return await self.readuntil(b"\n")

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next piece of the body and whether it ends a chunk of a chunked body."""
        while not self._buffer and not self._eof:
            await self._wait()
        if not self._buffer:
            return b"", False
        # As aiohttp: the bytes up to the next chunk's end when it is buffered (across
        # pieces), else the first piece.
        consumed = self.total_bytes - self._size
        end = self._next_chunk_end()
        if end is not None and end - consumed <= self._size:
            return self._take(end - consumed), True
        return self._take(len(self._buffer[0]) - self._offset), False

    def _next_chunk_end(self) -> int | None:
        ends = self._chunk_ends
        if ends is None or self._chunk_first >= len(ends):
            return None
        return ends[self._chunk_first]

    def _forget_chunk_ends(self) -> None:
        """Drop the chunk ends already read past (they are kept only for readchunk)."""
        ends = self._chunk_ends
        assert ends is not None
        consumed = self.total_bytes - self._size
        first = self._chunk_first
        count = len(ends)
        while first < count and ends[first] <= consumed:
            first += 1
        if first > 1024 and first * 2 > count:
            del ends[:first]
            first = 0
        self._chunk_first = first

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """Yield pieces of at most *n* bytes until the body ends."""
        while True:
            data = await self.read(n)
            if not data:
                return
            yield data

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Yield pieces as they arrive until the body ends."""
        while True:
            data = await self.readany()
            if not data:
                return
            yield data

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        """Yield ``(data, end_of_http_chunk)`` until the body ends."""
        while True:
            data, end = await self.readchunk()
            if not data and not end:
                return
            yield data, end

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.readline()
            if not line:
                return
            yield line


class EmptyStream(BodyStream):
    """The body of a request that has none: every read returns at once."""

    __slots__ = ()

    def __init__(self) -> None:
        self._buffer = deque()
        self._chunk_ends = None
        self._chunk_first = 0
        self._joining = None
        self._size = 0
        self._offset = 0
        self._eof = True
        self._exception = None
        self._waiter = None
        self._paused = False
        self._on_first_wait = None
        self.declared = None
        self.total_bytes = 0

    def feed_data(self, data: bytes) -> None:  # pragma: no cover - never fed
        raise RuntimeError("the empty body cannot be fed")

    def set_exception(self, exc: BaseException) -> None:
        """Shared by every bodiless request: a lost connection changes nothing here."""

    def __repr__(self) -> str:
        return "<EmptyStream>"


EMPTY_STREAM = EmptyStream()
