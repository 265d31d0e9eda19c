"""The transport side of one WebSocket: frames in, whole messages out.

Invariants:

* Messages wait in a bounded queue; past ``_MAX_QUEUED`` unread messages the socket
  stops being read until the handler catches up.
* Every send writes its frames in one ``transport.write``; the caller then waits while
  the transport's buffer is over its high-water mark: a slow reader slows the sender.
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
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

from websockets.exceptions import ProtocolError
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import Protocol, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedup ships in websockets' wheels
    from websockets.utils import apply_mask

from ..api.exceptions import ClientDisconnectedError
from .types import WS_CLOSED_MESSAGE, WS_CLOSING_MESSAGE, WSCloseCode, WSMessage, WSMsgType

if TYPE_CHECKING:
    from ..api.connection import Connection as HttpConnection
    from .response import WebSocketResponse

__all__ = ["WSConnection", "WSProtocol"]

_MAX_QUEUED = 64
_tuple_new = tuple.__new__
_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY


class WSProtocol(Protocol):
    """websockets' protocol, with aiohttp's order for replies: a client's close frame is
    held until the handler replies (reading it with ``autoclose``, or calling ``close()``),
    so answers to the messages before it go out first; pings are left to the handler with
    ``autoping=False``."""

    answer_pings = True
    held_close: Close | None = None  # a client's close frame, until the handler replies

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING and not self.answer_pings:
            self.events.append(frame)  # the handler gets a PING message and may pong()
            return
        if frame.opcode is Opcode.CLOSE and self.state is State.OPEN:
            self.held_close = Close.parse(frame.data)  # replied to by WSConnection.send_close
            if self.current_size is not None:
                raise ProtocolError("incomplete fragmented message")
            self.events.append(frame)
            return
        super().recv_frame(frame)


class WSConnection:
    """The transport side of one WebSocket: frames in, messages out."""

    __slots__ = (
        "_autoping",
        "_closed_event",
        "_decode_text",
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

    def __init__(
        self,
        resp: WebSocketResponse,
        proto: HttpConnection,
        ws: WSProtocol,
        *,
        autoping: bool,
        max_msg_size: int,
        decode_text: bool = True,
    ) -> None:
        self.resp = resp
        self._autoping = autoping
        self._decode_text = decode_text
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
        self._max_size = max_msg_size or (1 << 62)
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
                self._push(
                    _tuple_new(WSMessage, (_TEXT, text if self._decode_text else payload, None))
                )
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
            if not self._autoping:
                self._push(WSMessage(WSMsgType.PING, frame.data, None))
        elif op is Opcode.PONG:
            if self._pong_handle is not None:
                self._pong_handle.cancel()
                self._pong_handle = None
            if not self._autoping:
                self._push(WSMessage(WSMsgType.PONG, frame.data, None))
        elif op is Opcode.CLOSE:
            rcvd = self.ws.close_rcvd or self.ws.held_close
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
            self._push(WSMessage(WSMsgType.TEXT, text if self._decode_text else data, None))
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
        if self.ws.state is State.OPEN and not self.send_close(
            CloseCode.GOING_AWAY, "server shutting down"
        ):
            self._push(WS_CLOSING_MESSAGE)

    # -- from the handler -----------------------------------------------------
    async def send(self, opcode: Opcode, data: bytes) -> None:
        ws = self.ws
        if ws.state is not State.OPEN:
            raise ClientDisconnectedError("Cannot write to closing transport")
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
        if self.proto.write_paused:
            await self.proto.drain()

    async def next_message(self, timeout: float | None) -> WSMessage:
        """The next message received, waiting up to *timeout* seconds (None: no limit)."""
        if self._waiter is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        queue = self._queue
        if not queue:
            if self.closed and self.proto.transport is None:
                return WS_CLOSED_MESSAGE
            if self.ws.held_close is not None:
                return WS_CLOSING_MESSAGE  # the client closed; the handler has yet to reply
            waiter = self._waiter = self.proto.loop.create_future()
            try:
                if timeout is not None:
                    await asyncio.wait_for(asyncio.shield(waiter), timeout)
                else:
                    await waiter
            finally:
                self._waiter = None
        msg = queue.popleft()
        if self._paused:
            self.maybe_resume()
        return msg

    def maybe_resume(self) -> None:
        if self._paused and len(self._queue) < _MAX_QUEUED // 2 and self.proto.transport:
            self._paused = False
            self.proto.transport.resume_reading()

    def write_data(self, first: int, data: bytes) -> bool:
        """Write one TEXT (0x81) or BINARY (0x82) frame; True if the caller should drain."""
        ws = self.ws
        if ws.state is not State.OPEN:
            raise ClientDisconnectedError("Cannot write to closing transport")
        if ws.extensions:
            if first == 0x81:
                ws.send_text(data)
            else:
                ws.send_binary(data)
            self._flush()
            return self.proto.write_paused
        n = len(data)
        if n < 126:
            frame = bytes((first, n)) + data
        elif n < 65536:
            frame = bytes((first, 126)) + n.to_bytes(2, "big") + data
        else:
            frame = bytes((first, 127)) + n.to_bytes(8, "big") + data
        transport = self.proto.transport
        if transport is None or transport.is_closing():
            raise ClientDisconnectedError("Cannot write to closing transport")
        pending = ws.data_to_send()  # anything the protocol queued goes first
        transport.write(b"".join(pending) + frame if pending else frame)
        return self.proto.write_paused

    def send_close(self, code: int, reason: str) -> bool:
        """Send a close frame; True if it answered the client's (the handshake is done)."""
        ws = self.ws
        ws.send_close(CloseCode(code) if code in CloseCode._value2member_map_ else code, reason)
        if ws.held_close is None:
            self.close_code = code
            self._flush()
            return False
        # The client closed first: this reply completes the handshake, and the server
        # ends the connection. close_code stays the client's, as in aiohttp.
        ws.close_rcvd, ws.held_close = ws.held_close, None
        ws.close_rcvd_then_sent = True
        ws.send_eof()
        self._flush()
        self._after_close()
        return True

    async def close(self, code: int, message: bytes, timeout: float) -> bool:
        ws = self.ws
        if ws.state is State.OPEN:
            reason = (
                message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
            )
            if self.send_close(code, reason):
                return True
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
