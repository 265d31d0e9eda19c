"""The PROXY protocol header a connection starts with (``proxy_protocol``).

The reader sits in the connection's upgrade slot until the header is in (the data
path every request takes checks that slot already, and pays nothing more), then
hands the client's address and the bytes after the header back.
"""

from __future__ import annotations

from collections.abc import Callable

from ..wire import proxyprotocol

__all__ = ["ProxyHeaderReader"]


class ProxyHeaderReader:
    """Reads the PROXY protocol header a connection starts with (``proxy_protocol``):
    calls *read* with the header and the bytes after it, or *refused* with why not."""

    __slots__ = ("_buffer", "_read", "_refused")

    def __init__(
        self,
        read: Callable[[proxyprotocol.ProxyHeader, bytes], None],
        refused: Callable[[str], None],
    ) -> None:
        self._read = read
        self._refused = refused
        self._buffer = b""

    def traffic(self) -> tuple[int, int, int, int]:
        """Nothing written, no message or request (what it reads is the connection's
        count)."""
        return (0, 0, 0, 0)

    def data_received(self, data: bytes) -> None:
        buf = self._buffer = self._buffer + data
        try:
            header = proxyprotocol.parse(buf)
        except ValueError as exc:
            self._refused(str(exc))
            return
        if header is None:
            if len(buf) > proxyprotocol.MAX_HEADER:
                self._refused("header too long")
            return
        self._read(header, buf[header.length :])

    def eof_received(self) -> None:
        self._refused("closed before its PROXY header")

    def connection_lost(self, exc: BaseException | None) -> None:
        return None

    def pause_writing(self) -> None:
        return None

    def resume_writing(self) -> None:
        return None

    def shutdown(self) -> None:
        self._refused("server stopping")
