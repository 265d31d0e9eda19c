"""The response body writer: framing (length or chunked), compression, back-pressure.

A :class:`PayloadWriter` is made by ``StreamResponse.prepare`` and owns the body
bytes from then on. It holds the serialised head back until the first body write
(or the end), so a small response leaves in one ``transport.write``. It never
writes more than a declared ``Content-Length``; a body that ends short of it
marks the connection to close, the only honest signal left to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..wire.codings import Compressor, make_compressor

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["PayloadWriter"]


class PayloadWriter:
    """Writes one response's body to the connection."""

    __slots__ = (
        "_compressor",
        "_conn",
        "_ended",
        "_eof",
        "_head",
        "_remaining",
        "buffer_size",
        "chunked",
        "head_size",
        "length",
        "output_size",
    )

    def __init__(
        self,
        conn: Connection,
        head: bytes,
        *,
        chunked: bool,
        length: int | None,
        ended: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        #: Told when the body has all been written (an HTTP/2 stream ends there);
        #: None for HTTP/1.1, whose framing says it.
        self._ended = ended
        self._head: bytes | None = head
        self.chunked = chunked
        self.length = length
        self._remaining = length
        self._compressor: Compressor | None = None
        self._eof = False
        #: Body bytes written, as framed (``body_length``); the head's are ``head_size``.
        self.output_size = 0
        self.head_size = 0
        self.buffer_size = 0

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        self._compressor = make_compressor(encoding, strategy)

    def enable_chunking(self) -> None:
        self.chunked = True

    def send_head(self) -> None:
        """Send the head now (streaming responses show their headers at once)."""
        if self._head is not None:
            head, self._head = self._head, None
            self.head_size = len(head)
            self._conn.write_bytes(head)

    def _frame(self, data: bytes) -> bytes:
        if self._remaining is not None:
            if len(data) > self._remaining:
                data = data[: self._remaining]
            self._remaining -= len(data)
        if self.chunked and data:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def _emit(self, chunk: bytes) -> None:
        """Write framed bytes, preceded by the head if it has not gone yet."""
        self.output_size += len(chunk)
        if self._head is not None:
            self.head_size = len(self._head)
            chunk = self._head + chunk
            self._head = None
        if chunk:
            self._conn.write_bytes(chunk)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write a piece of the body; waits while the client is not reading."""
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        chunk = data if type(data) is bytes else bytes(data)
        self.buffer_size += len(chunk)
        if self._compressor is not None:
            chunk = self._compressor.compress(chunk)
        self._emit(self._frame(chunk))
        if self._conn.write_paused:
            await self._conn.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        """Write the last piece of the body and end the response."""
        self.finish(data)
        await self._conn.drain()

    def finish(self, data: bytes = b"") -> None:
        """End the response without waiting for the transport to drain."""
        if self._eof:
            return
        self._eof = True
        chunk = bytes(data)
        self.buffer_size += len(chunk)
        if self._compressor is not None:
            chunk = self._compressor.compress(chunk) + self._compressor.flush()
        chunk = self._frame(chunk)
        if self.chunked:
            chunk += b"0\r\n\r\n"
        self._emit(chunk)
        if self._remaining:
            self._conn.body_cut_short()
        if self._ended is not None:
            self._ended()

    async def drain(self) -> None:
        await self._conn.drain()

    async def write_file(self, f: Any, offset: int, count: int, chunk_size: int = 65536) -> None:
        """Write *count* bytes of the binary file *f* from *offset*.

        With nothing to transform them (no TLS, compression or chunking) the bytes go
        through ``loop.sendfile``: the kernel copies them. Where the loop cannot
        (uvloop has no sendfile), they are read *chunk_size* at a time in the loop's
        executor and written with back-pressure. Either way memory holds one chunk.
        """
        conn = self._conn
        loop = conn.loop
        transport = conn.transport
        if (
            count > 0
            and self._compressor is None
            and not self.chunked
            and self._ended is None  # an HTTP/2 stream's body goes in DATA frames
            and transport is not None
            and transport.get_extra_info("sslcontext") is None
        ):
            self.send_head()
            await conn.drain()
            try:
                sent = await loop.sendfile(transport, f, offset, count, fallback=False)
            except (NotImplementedError, RuntimeError):  # SendfileNotAvailableError
                pass
            else:
                self.output_size += sent
                if self._remaining is not None:
                    self._remaining -= sent
                offset += sent
                count -= sent
        if count > 0:
            await loop.run_in_executor(None, f.seek, offset)
        while count > 0:
            piece = await loop.run_in_executor(None, f.read, min(chunk_size, count))
            if not piece:
                break
            count -= len(piece)
            await self.write(piece)

    @property
    def eof(self) -> bool:
        return self._eof

    def __repr__(self) -> str:
        return f"<PayloadWriter chunked={self.chunked} length={self.length}>"
