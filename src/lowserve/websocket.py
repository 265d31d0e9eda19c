"""``WebSocketResponse``: aiohttp's WebSocket API on the websockets library's sans-I/O protocol.

The websockets ``Protocol`` does the RFC 6455 work: framing, masking (with its C
speedup), control frames, the close handshake, permessage-deflate, and the size
limit, counted across fragments and after decompression. This module adds what
aiohttp's API promises on top: the handshake checks, whole messages (UTF-8 checked),
``receive()`` and its timeouts, autoping/heartbeat, and back-pressure both ways.

Invariants:

* Messages wait in a bounded queue; past ``_MAX_QUEUED`` unread messages the socket
  stops being read until the handler catches up.
* Every send writes its frames in one ``transport.write`` and then waits while the
  transport's buffer is over its high-water mark: a slow reader slows the sender.
* Bytes the protocol wants sent (pongs, the close echo) are flushed after every batch
  of received data; an empty chunk from it means "close the TCP connection".

The fast path. Profiling the echo benchmark showed the library's generator-based frame
parser and serialiser as the largest cost, so the commonest frames take a path of our
own: a complete, masked, unfragmented TEXT/BINARY frame with no reserved bits, on a
connection with no extension, is unmasked (with websockets' C ``apply_mask``) and
delivered here; our own frames of that kind are written here too. Everything else —
control frames, fragments, compression, anything malformed — goes to websockets, and
``_Tracker`` follows the frame boundaries meanwhile, so the fast path resumes only at a
boundary outside a fragmented message. Size and UTF-8 violations found on the fast path
fail the connection through websockets (``Protocol.fail``), with the same close codes.

Two aiohttp behaviours differ: pings are always answered (websockets' protocol answers
them itself), and a close frame from the client is always echoed; with
``autoping=False``/``autoclose=False`` the handler still sees the PING/CLOSE messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import json
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from multidict import CIMultiDict
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.headers import build_extension, parse_extension
from websockets.protocol import Protocol, Side, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedup ships in websockets' wheels
    from websockets.utils import apply_mask

from .exceptions import HTTPBadRequest, HTTPMethodNotAllowed
from .response import StreamResponse

if TYPE_CHECKING:
    from .protocol import HttpProtocol
    from .request import BaseRequest

__all__ = ["WSCloseCode", "WSMessage", "WSMsgType", "WebSocketReady", "WebSocketResponse"]

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_QUEUED = 64


class WSMsgType(enum.IntEnum):
    """Message types, with aiohttp's values."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    PING = 0x9
    PONG = 0xA
    CLOSE = 0x8
    CLOSING = 0x100
    CLOSED = 0x101
    ERROR = 0x102


class WSCloseCode(enum.IntEnum):
    """Close codes, with aiohttp's names."""

    OK = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL_CLOSURE = 1006
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WSMessage(NamedTuple):
    """One received message: ``type``, ``data`` (str, bytes, close code…), ``extra``."""

    type: WSMsgType
    data: Any
    extra: Any

    def json(self, *, loads: Callable[[Any], Any] = json.loads) -> Any:
        """The data parsed as JSON."""
        return loads(self.data)


class WebSocketReady(NamedTuple):
    """What :meth:`WebSocketResponse.can_prepare` found."""

    ok: bool
    protocol: str | None

    def __bool__(self) -> bool:
        return self.ok


_tuple_new = tuple.__new__
_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
WS_CLOSED_MESSAGE = WSMessage(WSMsgType.CLOSED, None, None)
WS_CLOSING_MESSAGE = WSMessage(WSMsgType.CLOSING, None, None)


class WebSocketResponse(StreamResponse):
    """The server side of a WebSocket, after an HTTP ``Upgrade``."""

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
    ) -> None:
        super().__init__(status=101)
        self._timeout = timeout
        self._receive_timeout = receive_timeout
        self._autoclose = autoclose
        self._autoping = autoping
        self._heartbeat = heartbeat
        self._protocols = tuple(protocols)
        self._compress_wanted = compress
        self._max_msg_size = max_msg_size
        self._ws_protocol: str | None = None
        self._compress: int | bool = False
        self._conn: _Connection | None = None

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
                        accepted, extension = ServerPerMessageDeflateFactory(
                            compress_settings={"memLevel": 5}
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
        proto = request._protocol
        if proto.transport is None:
            raise ConnectionResetError("Connection lost")
        head, _, _ = self._make_head(request, 0)
        ws = Protocol(Side.SERVER, max_size=self._max_msg_size or None)
        if extension is not None:
            ws.extensions = [extension]
            self._compress = 15
        self._ws_protocol = protocol
        self._req = request
        proto.response_started(self)
        proto.write_bytes(head)
        conn = self._conn = _Connection(self, proto, ws)
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
        return self._conn is not None and self._conn.closed

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

    def _started(self) -> _Connection:
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
        """The next message; CLOSED once the connection is over."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("Call .prepare() first")
        if conn._waiter is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        queue = conn._queue
        if not queue:
            if conn.closed and conn.proto.transport is None:
                return WS_CLOSED_MESSAGE
            waiter = conn._waiter = conn.proto.loop.create_future()
            if timeout is None:
                timeout = self._receive_timeout
            try:
                if timeout is not None:
                    await asyncio.wait_for(asyncio.shield(waiter), timeout)
                else:
                    await waiter
            finally:
                conn._waiter = None
        msg = queue.popleft()
        if conn._paused:
            conn.maybe_resume()
        if msg.type is WSMsgType.CLOSE and self._autoclose:
            await conn.close(msg.data if isinstance(msg.data, int) else 1000, b"", self._timeout)
        return msg

    async def receive_str(self, *, timeout: float | None = None) -> str:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT")
        return str(msg.data)

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.BINARY:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not bytes")
        return bytes(msg.data)

    async def receive_json(
        self, *, loads: Callable[[Any], Any] = json.loads, timeout: float | None = None
    ) -> Any:
        return loads(await self.receive_str(timeout=timeout))

    def __aiter__(self) -> WebSocketResponse:
        return self

    async def __anext__(self) -> WSMessage:
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


class _Connection:
    """The transport side of one WebSocket: frames in, messages out."""

    __slots__ = (
        "_closed_event",
        "_fast",
        "_frag_type",
        "_fragments",
        "_heartbeat_handle",
        "_max_size",
        "_partial",
        "_paused",
        "_pong_handle",
        "_queue",
        "_tracker",
        "_waiter",
        "close_code",
        "closed",
        "exception",
        "proto",
        "resp",
        "ws",
    )

    def __init__(self, resp: WebSocketResponse, proto: HttpProtocol, ws: Protocol) -> None:
        self.resp = resp
        self.proto = proto
        self.ws = ws
        self._queue: deque[WSMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._frag_type: Opcode | None = None
        self._paused = False
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._pong_handle: asyncio.TimerHandle | None = None
        self._closed_event = asyncio.Event()
        self._fast = not ws.extensions
        self._partial = b""
        self._tracker = _Tracker()
        self._max_size = resp._max_msg_size or (1 << 62)
        self.closed = False
        self.close_code: int | None = None
        self.exception: BaseException | None = None

    # -- from the transport ---------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._fast:
            if self._partial:
                data = self._partial + data
                self._partial = b""
            rest = self._fast_frames(data)
            if rest is None:
                return
            data = rest
        self._slow(data)

    def _fast_frames(self, data: bytes) -> bytes | None:
        """Deliver the simple frames at the start of *data*; return what is not simple.

        None means everything was consumed (a trailing partial simple frame is kept).
        """
        pos, end = 0, len(data)
        ws = self.ws
        while pos < end:
            if end - pos < 2:
                self._partial = data[pos:]
                break
            b0, b1 = data[pos], data[pos + 1]
            if b0 not in (0x81, 0x82) or b1 < 0x80 or b1 == 0xFF:
                self._fast = False  # control, fragment, RSV, unmasked or 64-bit length
                self._flush()
                return data[pos:]
            n = b1 & 0x7F
            if n == 126:
                if end - pos < 4:
                    self._partial = data[pos:]
                    break
                n = (data[pos + 2] << 8) | data[pos + 3]
                head = 8
            else:
                head = 6
            if n > self._max_size:
                ws.fail(CloseCode.MESSAGE_TOO_BIG, f"frame with {n} bytes exceeds limit")
                self._fast = False
                break
            if end - pos < head + n:
                self._partial = data[pos:]
                break
            start = pos + head
            payload = apply_mask(data[start : start + n], data[start - 4 : start])
            pos += head + n
            if b0 == 0x81:
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                    self._fast = False
                    break
                self._push(_tuple_new(WSMessage, (_TEXT, text, None)))
            else:
                self._push(_tuple_new(WSMessage, (_BINARY, payload, None)))
        if not self._fast:
            self._flush()
            self._after_close()
        return None

    def _slow(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            self._on_frame(cast(Frame, event))
        self._flush()
        if (
            ws.state is State.CLOSED
            or ws.parser_exc is not None
            or (ws.close_rcvd is not None and ws.close_sent is not None)
        ):
            self._after_close()
        elif (
            self._tracker.feed(data)
            and not ws.extensions
            and ws.state is State.OPEN
            and not ws.reader.buffer
            and ws.current_size is None
        ):
            self._fast = True  # back at a frame boundary, outside a fragmented message

    def _on_frame(self, frame: Frame) -> None:
        op = frame.opcode
        payload = bytes(frame.data)
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if frame.fin:
                self._deliver_data(op, payload)
            else:
                self._frag_type = op
                self._fragments = [payload]
        elif op is Opcode.CONT:
            self._fragments.append(payload)
            if frame.fin and self._frag_type is not None:
                data, self._fragments = b"".join(self._fragments), []
                self._deliver_data(self._frag_type, data)
                self._frag_type = None
        elif op is Opcode.PING:
            if not self.resp._autoping:
                self._push(WSMessage(WSMsgType.PING, frame.data, None))
        elif op is Opcode.PONG:
            if self._pong_handle is not None:
                self._pong_handle.cancel()
                self._pong_handle = None
            if not self.resp._autoping:
                self._push(WSMessage(WSMsgType.PONG, frame.data, None))
        elif op is Opcode.CLOSE:
            rcvd = self.ws.close_rcvd
            code = int(rcvd.code) if rcvd is not None else 1005
            self.close_code = code
            self._push(WSMessage(WSMsgType.CLOSE, code, rcvd.reason if rcvd else ""))

    def _deliver_data(self, op: Opcode, data: bytes) -> None:
        if op is Opcode.TEXT:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return
            self._push(WSMessage(WSMsgType.TEXT, text, None))
        else:
            self._push(WSMessage(WSMsgType.BINARY, data, None))

    def _push(self, msg: WSMessage) -> None:
        self._queue.append(msg)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if len(self._queue) >= _MAX_QUEUED and not self._paused and self.proto.transport:
            self._paused = True
            self.proto.transport.pause_reading()

    def _flush(self) -> None:
        out = self.ws.data_to_send()
        if not out:
            return
        transport = self.proto.transport
        if transport is None or transport.is_closing():
            return
        eof = out[-1] == b""
        payload = b"".join(out)
        if payload:
            transport.write(payload)
        if eof:
            transport.close()

    def _after_close(self) -> None:
        """The protocol is closed (handshake done, or it failed the connection)."""
        if self.closed:
            return
        self.closed = True
        ws = self.ws
        exc = ws.parser_exc
        if exc is not None and self.close_code is None:
            self.exception = exc
            sent = ws.close_sent
            self.close_code = int(sent.code) if sent is not None else 1006
            self._push(WSMessage(WSMsgType.ERROR, exc, None))
        elif self.close_code is None and ws.close_sent is not None:
            self.close_code = int(ws.close_sent.code)
        self._closed_event.set()
        self._stop_heartbeat()

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.closed:
            self.closed = True
            if self.close_code is None:
                self.close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._closed_event.set()
        self._stop_heartbeat()
        self._push(WS_CLOSED_MESSAGE)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def shutdown(self) -> None:
        """The server is stopping: close with 1001 (going away)."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.GOING_AWAY, "server shutting down")
            self._flush()
            self._push(WS_CLOSING_MESSAGE)

    # -- from the handler -----------------------------------------------------
    async def send(self, opcode: Opcode, data: bytes) -> None:
        ws = self.ws
        if ws.state is not State.OPEN:
            raise ConnectionResetError("Cannot write to closing transport")
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self.write_data(0x80 | opcode.value, data):
                await self.proto.drain()
            return
        if opcode is Opcode.PING:
            ws.send_ping(data)
        elif opcode is Opcode.PONG:
            ws.send_pong(data)
        elif opcode is Opcode.CLOSE:
            ws.send_close(CloseCode(int.from_bytes(data[:2], "big")) if data else None)
        else:
            ws.send_frame(Frame(opcode, data))
        self._flush()
        if self.proto._write_paused:
            await self.proto.drain()

    def maybe_resume(self) -> None:
        if self._paused and len(self._queue) < _MAX_QUEUED // 2 and self.proto.transport:
            self._paused = False
            self.proto.transport.resume_reading()

    def write_data(self, first: int, data: bytes) -> bool:
        """Write one TEXT (0x81) or BINARY (0x82) frame; True if the caller should drain."""
        ws = self.ws
        if ws.state is not State.OPEN:
            raise ConnectionResetError("Cannot write to closing transport")
        if ws.extensions:
            if first == 0x81:
                ws.send_text(data)
            else:
                ws.send_binary(data)
            self._flush()
            return self.proto._write_paused
        n = len(data)
        if n < 126:
            frame = bytes((first, n)) + data
        elif n < 65536:
            frame = bytes((first, 126)) + n.to_bytes(2, "big") + data
        else:
            frame = bytes((first, 127)) + n.to_bytes(8, "big") + data
        transport = self.proto.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        pending = ws.data_to_send()  # anything the protocol queued goes first
        transport.write(b"".join(pending) + frame if pending else frame)
        return self.proto._write_paused

    async def close(self, code: int, message: bytes, timeout: float) -> bool:
        ws = self.ws
        if ws.state is State.OPEN:
            reason = (
                message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
            )
            ws.send_close(CloseCode(code) if code in CloseCode._value2member_map_ else code, reason)
            self.close_code = code
            self._flush()
            try:
                await asyncio.wait_for(self._closed_event.wait(), timeout)
            except asyncio.TimeoutError:
                self.close_code = WSCloseCode.ABNORMAL_CLOSURE
            if self.proto.transport is not None:
                self.proto.transport.close()
            self.closed = True
            return True
        if self.proto.transport is not None and self.closed:
            self.proto.transport.close()
        return False

    def abort_later(self) -> None:
        transport = self.proto.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    # -- heartbeat --------------------------------------------------------------
    def start_heartbeat(self, interval: float) -> None:
        loop = self.proto.loop
        self._heartbeat_handle = loop.call_later(interval, self._send_heartbeat, interval)

    def _send_heartbeat(self, interval: float) -> None:
        if self.ws.state is not State.OPEN:
            return
        self.ws.send_ping(b"")
        self._flush()
        loop = self.proto.loop
        if self._pong_handle is None:
            self._pong_handle = loop.call_later(interval / 2, self._pong_not_received)
        self._heartbeat_handle = loop.call_later(interval, self._send_heartbeat, interval)

    def _pong_not_received(self) -> None:
        self._pong_handle = None
        self.close_code = WSCloseCode.ABNORMAL_CLOSURE
        self.exception = asyncio.TimeoutError("no PONG received in time")
        self.closed = True
        self._closed_event.set()
        self._stop_heartbeat()
        self._push(WS_CLOSED_MESSAGE)
        if self.proto.transport is not None:
            self.proto.transport.abort()

    def _stop_heartbeat(self) -> None:
        for handle in (self._heartbeat_handle, self._pong_handle):
            if handle is not None:
                handle.cancel()
        self._heartbeat_handle = self._pong_handle = None


class _Tracker:
    """Follows frame boundaries in bytes websockets parses, so the fast path can resume.

    ``feed`` returns True when the bytes fed so far end exactly at a frame boundary
    outside a fragmented message.
    """

    __slots__ = ("_fragmented", "_head", "_skip")

    def __init__(self) -> None:
        self._skip = 0
        self._head = b""
        self._fragmented = False

    def feed(self, data: bytes) -> bool:
        if self._head:
            data = self._head + data
            self._head = b""
        pos, end = 0, len(data)
        while True:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                if self._skip:
                    return False
            if pos == end:
                return not self._fragmented
            if end - pos < 2:
                self._head = data[pos:]
                return False
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            size = 2 + (4 if b1 & 0x80 else 0) + (2 if n == 126 else 8 if n == 127 else 0)
            if end - pos < size:
                self._head = data[pos:]
                return False
            if n == 126:
                n = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif n == 127:
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
            opcode = b0 & 0x0F
            if opcode in (0, 1, 2):
                self._fragmented = not (b0 & 0x80)
            pos += size
            self._skip = n
