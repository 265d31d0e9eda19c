"""``WebSocketResponse``: aiohttp's WebSocket API on the websockets library's sans-I/O protocol.

The websockets ``Protocol`` does the RFC 6455 work: framing, masking (with its C
speedup), control frames, the close handshake, permessage-deflate, and the size
limit, counted across fragments and after decompression. This module holds the API
(the handshake, ``receive()``/``send_*()``, ``close()``); :mod:`lowserve.ws.connection`
holds the connection underneath (whole messages, queues, back-pressure, the fast path).

As in aiohttp, a client's close frame is answered (with 1000) when the handler reads
it, after its answers to the messages before it; ``autoclose=False`` leaves that reply
to the handler's :meth:`WebSocketResponse.close`, and ``autoping=False`` leaves pings to
the handler (it answers with :meth:`WebSocketResponse.pong`). Likewise a protocol
violation is an ERROR message after the messages before it, and its close frame (1002,
1007, 1009) goes out when the handler reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from multidict import CIMultiDict
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.headers import build_extension, parse_extension
from websockets.protocol import Side

from ..api.exceptions import ClientDisconnectedError, HTTPBadRequest, HTTPMethodNotAllowed
from ..api.response import StreamResponse
from .connection import MessageIterator, WSConnection, WSProtocol
from .types import (
    WS_CLOSED_MESSAGE,
    WebSocketReady,
    WSCloseCode,
    WSMessage,
    WSMsgType,
)

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from ..api.request import BaseRequest

    # What TEXT messages carry: str (decode_text=True, the default) or bytes (False).
    _DecodeText = TypeVar("_DecodeText", bound=bool, covariant=True, default=Literal[True])
else:
    _DecodeText = typing.TypeVar("_DecodeText", bound=bool, covariant=True)

__all__ = ["WSCloseCode", "WSMessage", "WSMsgType", "WebSocketReady", "WebSocketResponse"]

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
_CLOSED_READS_LIMIT = 5  # aiohttp's THRESHOLD_CONNLOST_ACCESS

#: permessage-deflate's zlib level (aiohttp's is 1; websockets' and zlib's default 6).
#: Measured with callgrind on 2,000 distinct JSON messages of ~290 bytes: level 1
#: 43,000 instructions a message, output 0.277 of the input; level 6 66,000 and 0.194.
#: On ~6 KiB messages: level 1 299,000 (0.221), level 6 about twice that (0.165).
DEFAULT_COMPRESS_LEVEL = 1
#: The server's LZ77 window, as bits (server_max_window_bits; 9-15), also asked of a
#: client that offers client_max_window_bits. 12 bits (4 KiB), as websockets: zlib's
#: compressor then takes ~32 KiB a connection where 15 bits takes ~144 KiB, for output
#: 3% larger (0.285 of the input against 0.277 on the same messages at level 1).
DEFAULT_COMPRESS_WINDOW_BITS = 12


class WebSocketResponse(StreamResponse, Generic[_DecodeText]):
    """The server side of a WebSocket, after an HTTP ``Upgrade``.

    With ``decode_text=False``, TEXT messages carry their (valid UTF-8) bytes, as in
    aiohttp; type such a response as ``WebSocketResponse[Literal[False]]``.

    lowserve's own arguments: ``compress_level`` (zlib's 0-9) and
    ``compress_window_bits`` (9-15) set permessage-deflate, when the client offers it
    and ``compress`` is true; the defaults, 1 and 12, were chosen by measurement (see
    :data:`DEFAULT_COMPRESS_LEVEL`).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        receive_timeout: float | None = None,
        autoclose: bool = True,
        autoping: bool = True,
        heartbeat: float | None = None,
        protocols: tuple[str, ...] | list[str] = (),
        compress: bool = True,
        max_msg_size: int = 4 * 1024 * 1024,
        writer_limit: int = 2**18,
        decode_text: bool = True,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
        compress_window_bits: int = DEFAULT_COMPRESS_WINDOW_BITS,
    ) -> None:
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be 0 to 9 (zlib's), not {compress_level!r}")
        if not 9 <= compress_window_bits <= 15:
            raise ValueError(f"compress_window_bits must be 9 to 15, not {compress_window_bits!r}")
        super().__init__(status=101)
        self._timeout = timeout
        self._receive_timeout = receive_timeout
        self._autoclose = autoclose
        self._autoping = autoping
        self._heartbeat = heartbeat
        self._protocols = tuple(protocols)
        self._compress_wanted = compress
        self._compress_level = compress_level
        self._compress_window_bits = compress_window_bits
        self._max_msg_size = max_msg_size
        self._decode_text = decode_text  # False: TEXT messages arrive as (valid UTF-8) bytes
        self._writer_limit = writer_limit  # accepted for aiohttp; the transport's limits apply
        self._ws_protocol: str | None = None
        self._compress: int | bool = False
        self._conn: WSConnection | None = None
        self._closed_reads = 0  # receive() calls after the handler learnt it was closed

    # -- handshake --------------------------------------------------------------
    def _handshake(self, request: BaseRequest) -> tuple[CIMultiDict[str], str | None, Any]:
        if request.method != "GET":
            raise HTTPMethodNotAllowed(request.method, ["GET"])
        headers = request.headers
        if headers.get("Upgrade", "").lower().strip() != "websocket":
            raise HTTPBadRequest(
                text=f"No WebSocket UPGRADE hdr: {headers.get('Upgrade')}\n"
                ' Can "Upgrade" only to "WebSocket".'
            )
        if "upgrade" not in [t.strip() for t in headers.get("Connection", "").lower().split(",")]:
            raise HTTPBadRequest(text=f"No CONNECTION upgrade hdr: {headers.get('Connection')}")
        protocol = None
        if "Sec-WebSocket-Protocol" in headers:
            wanted = [p.strip() for p in headers["Sec-WebSocket-Protocol"].split(",")]
            protocol = next((p for p in wanted if p in self._protocols), None)
        version = headers.get("Sec-WebSocket-Version", "")
        if version not in ("13", "8", "7"):
            raise HTTPBadRequest(text=f"Unsupported version: {version}")
        key = headers.get("Sec-WebSocket-Key")
        try:
            if not key or len(base64.b64decode(key, validate=True)) != 16:
                raise HTTPBadRequest(text=f"Handshake error: {key!r}")
        except binascii.Error:
            raise HTTPBadRequest(text=f"Handshake error: {key!r}") from None
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        out = CIMultiDict(
            {"Upgrade": "websocket", "Connection": "upgrade", "Sec-WebSocket-Accept": accept}
        )
        extension = None
        if self._compress_wanted:
            for value in headers.getall("Sec-WebSocket-Extensions", ()):
                try:
                    offers = parse_extension(value)
                except Exception:  # a malformed offer: serve without compression
                    continue
                for name, params in offers:
                    if name != "permessage-deflate":
                        continue
                    try:
                        window = self._compress_window_bits
                        accepted, extension = ServerPerMessageDeflateFactory(
                            server_max_window_bits=window if window < 15 else None,
                            client_max_window_bits=window if window < 15 else None,
                            compress_settings={"memLevel": 5, "level": self._compress_level},
                        ).process_request_params(params, [])
                    except Exception:
                        continue
                    out["Sec-WebSocket-Extensions"] = build_extension([(name, accepted)])
                    break
                if extension is not None:
                    break
        if protocol:
            out["Sec-WebSocket-Protocol"] = protocol
        return out, protocol, extension

    def can_prepare(self, request: BaseRequest) -> WebSocketReady:
        """Whether *request* is a WebSocket handshake this response would accept."""
        if self._conn is not None:
            raise RuntimeError("Already started")
        try:
            _, protocol, _ = self._handshake(request)
        except (HTTPBadRequest, HTTPMethodNotAllowed):
            return WebSocketReady(False, None)
        return WebSocketReady(True, protocol)

    async def prepare(self, request: BaseRequest) -> Any:
        """Answer the handshake (101) and take over the connection."""
        if self._conn is not None:
            return self._conn
        headers, protocol, extension = self._handshake(request)
        self.set_status(101)
        self.headers.update(headers)
        self.force_close()
        proto = request.protocol
        if proto.transport is None or proto.transport.is_closing() or proto.client_eof:
            raise ClientDisconnectedError("Connection lost")  # as aiohttp, before the 101
        head, _, _ = self._make_head(request, 0)
        ws = WSProtocol(Side.SERVER, max_size=self._max_msg_size or None)
        ws.answer_pings = self._autoping
        if extension is not None:
            ws.extensions = [extension]
            self._compress = extension.local_max_window_bits  # the server's window, in bits
        self._ws_protocol = protocol
        self._req = request
        proto.response_started(self)
        proto.write_bytes(head)
        conn = self._conn = WSConnection(
            proto,
            ws,
            autoping=self._autoping,
            max_msg_size=self._max_msg_size,
            decode_text=self._decode_text,
            close_timeout=self._timeout,
        )
        tail = proto.take_over(conn)
        if tail:
            conn.data_received(tail)
        if self._heartbeat:
            conn.start_heartbeat(self._heartbeat)
        return conn

    @property
    def prepared(self) -> bool:
        return self._conn is not None or self._eof_sent

    # -- state --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once closing began (the handler's ``close()``) or the connection ended."""
        conn = self._conn
        return conn is not None and (conn.closed or conn.finished)

    @property
    def close_code(self) -> int | None:
        return self._conn.close_code if self._conn is not None else None

    @property
    def ws_protocol(self) -> str | None:
        return self._ws_protocol

    @property
    def compress(self) -> int | bool:
        return self._compress

    def exception(self) -> BaseException | None:
        return self._conn.exception if self._conn is not None else None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        conn = self._conn
        if conn is None or conn.proto.transport is None:
            return default
        return conn.proto.transport.get_extra_info(name, default)

    def _started(self) -> WSConnection:
        if self._conn is None:
            raise RuntimeError("Call .prepare() first")
        return self._conn

    # -- sending ------------------------------------------------------------------
    async def send_str(self, data: str, compress: int | None = None) -> None:
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        conn = self._conn
        if conn is None:
            raise RuntimeError("Call .prepare() first")
        if conn.write_data(0x81, data.encode()):
            await conn.proto.drain()

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: int | None = None
    ) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        conn = self._started()
        if conn.write_data(0x82, bytes(data)):
            await conn.proto.drain()

    async def send_json(
        self, data: Any, compress: int | None = None, *, dumps: Callable[[Any], str] = json.dumps
    ) -> None:
        await self.send_str(dumps(data), compress=compress)

    async def send_frame(
        self, message: bytes, opcode: WSMsgType, compress: int | None = None
    ) -> None:
        await self._started().send(Opcode(int(opcode)), bytes(message))

    async def ping(self, message: bytes = b"") -> None:
        await self._started().send(Opcode.PING, bytes(message))

    async def pong(self, message: bytes = b"") -> None:
        await self._started().send(Opcode.PONG, bytes(message))

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("Cannot call .write() for websocket")

    # -- receiving ----------------------------------------------------------------
    async def receive(self, timeout: float | None = None) -> WSMessage:
        """The next message; CLOSED once the connection is over.

        As in aiohttp, the fifth call after that raises ``RuntimeError``, so that a loop
        that ignores CLOSED does not spin forever.
        """
        conn = self._conn
        if conn is None:
            raise RuntimeError("Call .prepare() first")
        if conn.finished:
            self._closed_reads += 1
            if self._closed_reads >= _CLOSED_READS_LIMIT:
                raise RuntimeError("WebSocket connection is closed.")
            return WS_CLOSED_MESSAGE
        msg = await conn.next_message(self._receive_timeout if timeout is None else timeout)
        if msg.type is WSMsgType.CLOSE and self._autoclose:
            await conn.close(WSCloseCode.OK, b"", self._timeout)  # aiohttp replies 1000
        return msg

    @overload
    async def receive_str(
        self: WebSocketResponse[Literal[True]], *, timeout: float | None = None
    ) -> str: ...

    @overload
    async def receive_str(
        self: WebSocketResponse[Literal[False]], *, timeout: float | None = None
    ) -> bytes: ...

    @overload
    async def receive_str(
        self: WebSocketResponse[bool], *, timeout: float | None = None
    ) -> str | bytes: ...

    async def receive_str(self, *, timeout: float | None = None) -> str | bytes:
        """The next message, which must be TEXT: its str, or its bytes with
        ``decode_text=False``."""
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT")
        data: str | bytes = msg.data
        return data

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.BINARY:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not bytes")
        return bytes(msg.data)

    async def receive_json(
        self, *, loads: Callable[[Any], Any] = json.loads, timeout: float | None = None
    ) -> Any:
        """The next TEXT message parsed by *loads* (given bytes with ``decode_text=False``)."""
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT")
        return loads(msg.data)

    def __aiter__(self) -> AsyncIterator[WSMessage]:
        """Itself; or, once prepared, unless a subclass overrides ``receive`` or
        ``__anext__``, the connection's :class:`~lowserve.ws.connection.MessageIterator`
        (the same messages; a compiled ``__anext__``)."""
        conn = self._conn
        cls = type(self)
        if conn is not None and cls.receive is _RECEIVE and cls.__anext__ is _ANEXT:
            return MessageIterator(
                self, conn, self._receive_timeout, self._autoclose, self._timeout
            )
        return self

    def __anext__(self) -> Awaitable[WSMessage]:
        """The next TEXT or BINARY message of ``async for`` (which ends at CLOSE).

        Unless a subclass overrides :meth:`receive`, this is one compiled coroutine of
        the connection's (:meth:`WSConnection.next_data`) rather than two of this
        class's around it: 2,200 fewer instructions per message (bench/ws_inmemory.py).
        """
        conn = self._conn
        if conn is not None and not conn.finished and type(self).receive is _RECEIVE:
            return conn.next_data(self._receive_timeout, self._autoclose, self._timeout)
        return self._anext()

    async def _anext(self) -> WSMessage:
        msg = await self.receive()
        if msg.type is _TEXT or msg.type is _BINARY:
            return msg
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise StopAsyncIteration
        return msg

    # -- closing ------------------------------------------------------------------
    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Start (or finish) the closing handshake; True if this call closed it."""
        if self._conn is None:
            raise RuntimeError("Call .prepare() first")
        return await self._conn.close(code, message, self._timeout)

    async def write_eof(self, data: bytes = b"") -> None:
        """Called when the handler returns: close the WebSocket properly."""
        if self._eof_sent:
            return
        if self._conn is not None:
            await self._conn.close(WSCloseCode.OK, b"", self._timeout)
            self._conn.abort_later()
        self._eof_sent = True

    def __repr__(self) -> str:
        return f"<WebSocketResponse {'closed' if self.closed else 'open'}>"


_RECEIVE = WebSocketResponse.receive
_ANEXT = WebSocketResponse.__anext__
