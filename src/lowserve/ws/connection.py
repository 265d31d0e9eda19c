"""The transport side of one WebSocket: frames in, whole messages out.

Invariants:

* Messages wait in a bounded queue; past ``_MAX_QUEUED`` unread messages the socket
  stops being read until the handler catches up.
* Every send writes its frames in one ``transport.write``; the caller then waits while
  the transport's buffer is over its high-water mark: a slow reader slows the sender.
* Bytes the protocol wants sent (pongs, the close echo) are flushed after every batch
  of received data; an empty chunk from it means "close the TCP connection".
* Nothing is read after the client's close frame, or after a fault in what it sent: no
  ping is answered, no message delivered. A fault's close frame goes out once the
  handler has read the messages before it (as in aiohttp, its answers to them go
  first), or after the response's close timeout.
* Closing, as a handler sees it, follows aiohttp. ``finished`` (aiohttp's ``_closed``)
  is set by the handler's ``close()``, by the first CLOSED it reads, or by a missed
  pong; from then on nothing more is queued and ``receive()`` answers CLOSED. A client
  that vanishes without a close frame leaves code 1006 and a ``ConnectionResetError``
  in ``exception``; a close frame the client never answers, 1006 and ``TimeoutError()``.
* Text is checked as UTF-8 as it arrives, fragment by fragment and, on uncompressed
  connections, within a frame still arriving (``_Tracker``): a bad byte fails the
  connection (1007) at once, not when its message is complete.

The fast path. Profiling the echo benchmark showed the library's generator-based frame
parser and serialiser as the largest cost, so the commonest frames take a path of our
own (:meth:`WSConnection._fast_frames`): complete, masked TEXT/BINARY frames and their
continuations, and whole compressed messages, are unmasked and delivered here; our own
data frames are written here too. Everything else — control frames, compressed
fragments, anything malformed — goes to websockets, and ``_Tracker`` follows the frame
boundaries meanwhile, so the fast path resumes only at a boundary outside a fragmented
message. A text frame not yet complete has the UTF-8 that has arrived checked at each
read (``_utf8_so_far``). Size and UTF-8 violations found on the fast path fail the
connection through websockets (``Protocol.fail``), with the same close codes.

Compiled (setup.py, with ``connection.pxd``), the frame loop runs on C integers and
``speedups.unmask`` and ``speedups.new_message`` are C functions (``_cspeedups.pxd``);
as plain Python it runs the same code, with :mod:`.speedups`' Python ones.
Measured with ``bench/ws_inmemory.py --instructions``: a 256 KiB message in 1,024
fragments went from 15.3M to 2.06M instructions (aiohttp's compiled reader: 2.37M),
a 34-byte echo from 44,300 to 30,700 (aiohttp: 41,300); bench/PROFILE.md has the
steps.
"""

from __future__ import annotations

import asyncio
import codecs
from collections import deque
from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING, Any, cast

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import Protocol, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedup ships in websockets' wheels
    from websockets.utils import apply_mask

from ..api.exceptions import ClientDisconnectedError
from . import speedups
from .types import WS_CLOSED_MESSAGE, WS_CLOSING_MESSAGE, WSCloseCode, WSMessage, WSMsgType

if TYPE_CHECKING:
    from ..api.connection import Connection as HttpConnection
    from .response import WebSocketResponse

__all__ = ["MessageIterator", "WSConnection", "WSProtocol"]

_MAX_QUEUED = 64
_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
_OPEN = State.OPEN
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_utf8_decode = codecs.utf_8_decode  # (bytes, errors, final) -> (str, bytes used)
#: The first two bytes of our frames with a payload under 126 bytes, by first byte:
#: a lookup instead of building them per message.
_SHORT_HEADS = {
    first: tuple(bytes((first, n)) for n in range(126)) for first in (0x81, 0x82, 0xC1, 0xC2)
}


class WSProtocol(Protocol):
    """websockets' protocol, with aiohttp's order for replies and RFC 6455's strictness.

    * A client's close frame is held until the handler replies (reading it with
      ``autoclose``, or calling ``close()``), so answers to the messages before it go
      out first. Nothing after it is read: no ping is answered, no message delivered
      (RFC 6455 1.4). A close between two fragments of a message is a close like any
      other (control frames may come between fragments, 5.4); the message is dropped.
    * A failure found in received data (bad framing, bad UTF-8, a message too big) is
      held in ``failure`` until the handler has read the messages before it; then
      :meth:`fail_now` sends the close frame. Nothing after the fault is read.
    * Pings are left to the handler with ``autoping=False``.
    """

    answer_pings = True
    held_close: Close | None = None  # a client's close frame, until the handler replies
    failure: tuple[int, str] | None = None  # (code, reason) of a failure not yet sent
    #: ``state is OPEN``, kept by the setter: a plain attribute where every message
    #: sent checks it (websockets' ``state`` is a property, a Python call each time).
    is_open = False

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        Protocol.state.fset(self, state)  # type: ignore[attr-defined]
        self.is_open = state is _OPEN

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE and self.state is State.OPEN:
            self.held_close = Close.parse(frame.data)  # replied to by WSConnection.send_close
            self.current_size = None  # a fragmented message it interrupts is dropped
            self.events.append(frame)
            self._ignore_the_rest()
            return
        if frame.opcode is Opcode.PING and not self.answer_pings:
            self.events.append(frame)  # the handler gets a PING message and may pong()
            return
        super().recv_frame(frame)

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        """Hold a failure found in received data until :meth:`fail_now`; an abnormal
        closure (EOF mid-frame) fails at once."""
        if self.state is State.OPEN and code != CloseCode.ABNORMAL_CLOSURE:
            if self.failure is None:
                self.failure = (int(code), reason)
                self._ignore_the_rest()
            return
        super().fail(code, reason)

    def fail_now(self) -> None:
        """Send the close frame of the held failure and end the connection."""
        if self.failure is not None and self.state is State.OPEN:
            super().fail(*self.failure)

    def _ignore_the_rest(self) -> None:
        self.parser = self._ignore()
        next(self.parser)

    def _ignore(self) -> Generator[None]:
        """Discard what arrives, until EOF and after it (unlike websockets' ``discard``,
        it needs no EOF sent first: the reply to the close or failure comes later)."""
        while not (yield from self.reader.at_eof()):
            self.reader.discard()
        while True:
            yield


class WSConnection:
    """The transport side of one WebSocket: frames in, messages out."""

    __slots__ = (
        "_autoping",
        "_close_read",
        "_close_timeout",
        "_closed_event",
        "_decode_text",
        "_deflate",
        "_error_queued",
        "_fail_handle",
        "_fast",
        "_fast_ok",
        "_frag_type",
        "_fragments",
        "_heartbeat_handle",
        "_lost",
        "_max_size",
        "_msg_size",
        "_partial",
        "_paused",
        "_pong_handle",
        "_queue",
        "_received",
        "_sent",
        "_texts",
        "_tracker",
        "_utf8_tail",
        "_waiter",
        "_written",
        "close_code",
        "closed",
        "exception",
        "finished",
        "proto",
        "ws",
    )

    def __init__(
        self,
        proto: HttpConnection,
        ws: WSProtocol,
        *,
        autoping: bool,
        max_msg_size: int,
        decode_text: bool = True,
        close_timeout: float = 10.0,
    ) -> None:
        self._autoping = autoping
        self._decode_text = decode_text
        self._close_timeout = close_timeout
        self.proto = proto
        self.ws = ws
        self._queue: deque[WSMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._frag_type: Opcode | None = None  # the opcode of the message being received
        self._msg_size = 0  # its size so far, while the fast path reads it
        self._fragments: list[bytes] = []  # its parts, unless they are decoded text
        self._texts: list[str] = []  # its decoded text, with decode_text
        #: if TEXT, the end of its UTF-8 not yet decoded (part of a code point, or b"")
        self._utf8_tail: bytes | None = None
        self._error_queued = False
        self._fail_handle: asyncio.TimerHandle | None = None
        self._paused = False
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._pong_handle: asyncio.TimerHandle | None = None
        self._closed_event = asyncio.Event()
        extensions = ws.extensions
        deflate = extensions[0] if len(extensions) == 1 else None
        #: permessage-deflate, when it is the connection's one extension: whole messages
        #: are inflated and deflated on the fast path, through its decode and encode.
        self._deflate = deflate if isinstance(deflate, PerMessageDeflate) else None
        self._fast_ok = not extensions or self._deflate is not None
        self._fast = self._fast_ok
        self._partial = b""
        self._tracker = _Tracker()
        self._max_size = max_msg_size or (1 << 62)
        self.closed = False
        self.close_code: int | None = None
        self.exception: BaseException | None = None
        self.finished = False  # the handler closed, or was told it is over (aiohttp's _closed)
        #: For --metrics: data messages received and sent, bytes written (C additions).
        self._received = self._sent = self._written = 0
        self._lost = False  # the client went away without completing the close handshake
        self._close_read = False  # the handler has read the client's CLOSE

    # -- from the transport ---------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if type(data) is not bytes:
            data = bytes(data)
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

        Simple: a complete, masked data frame with no reserved bit and a length under
        64 KiB, that fits the message in progress (TEXT or BINARY outside a fragmented
        message, a continuation inside one) and keeps it within ``max_msg_size``.
        None means everything was consumed (a trailing partial simple frame is kept,
        unless it is text with some payload: websockets takes that, and ``_Tracker``
        checks its UTF-8 as it arrives). What is returned goes to websockets, told of
        the message in progress (:meth:`_leave_fast_path`), so it judges the frame as
        if it had parsed the ones before.

        Fragments take this path too. Profiled on 256 KiB text messages sent as 1,024
        fragments of 256 bytes, the slow path (websockets' generator-based parser, and
        ``_Tracker`` reading the same headers and checking the same UTF-8 ahead of it)
        cost ~20 µs of server CPU per fragment.
        """
        pos, end = 0, len(data)
        run: list[bytes] | None = None  # fragments of a message read in a row, not yet added
        while pos < end:
            if end - pos < 2:
                self._partial = data[pos:]
                break
            b0, b1 = data[pos], data[pos + 1]
            if b1 < 0x80 or b1 == 0xFF or b0 & 0x30:
                return self._leave(data, pos, run)  # unmasked, 64-bit length, RSV2/3
            op = b0 & 0x0F
            whole = b0 & 0x80 and self._frag_type is None  # an unfragmented message
            if not whole and (
                op > 2 or (op == 0) is (self._frag_type is None) or self._deflate is not None
            ):
                # control; a continuation of nothing; a new message inside a fragmented
                # one; a fragment where messages may be compressed
                return self._leave(data, pos, run)
            if b0 & 0x40 and (self._deflate is None or not whole):
                return self._leave(data, pos, run)  # RSV1 without permessage-deflate
            n = b1 & 0x7F
            if n == 126:
                if end - pos < 4:
                    self._partial = data[pos:]
                    break
                n = (data[pos + 2] << 8) | data[pos + 3]
                head = 8
            else:
                head = 6
            if whole:
                if op > 2 or not op:
                    return self._leave(data, pos, run)  # control, or CONT of nothing
                if n > self._max_size:
                    exc = PayloadTooBig(n, self._max_size)
                    self._fast_failed(CloseCode.MESSAGE_TOO_BIG, f"{n} bytes exceeds limit", exc)
                    break
                if end - pos < head + n:
                    if op == 1 and not b0 & 0x40 and not _utf8_so_far(data, pos + head, b""):
                        return self._leave(data, pos, run)  # websockets fails it
                    self._partial = data[pos:]
                    break
                payload = speedups.unmask(data, pos + head, n)
                pos += head + n
                if b0 & 0x40:
                    inflated = self._inflate(op, payload)
                    if inflated is None:
                        break
                    payload = inflated
                if op == 1:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        self._fast_failed(CloseCode.INVALID_DATA, "invalid UTF-8", exc)
                        break
                    self._push(
                        speedups.new_message(
                            WSMessage, (_TEXT, text if self._decode_text else payload, "")
                        )
                    )
                else:
                    self._push(speedups.new_message(WSMessage, (_BINARY, payload, "")))
                self._received += 1
                continue
            # a fragment
            size = n if op else self._msg_size + n
            if size > self._max_size:
                return self._leave(data, pos, run)  # websockets fails it (1009)
            if end - pos < head + n:
                if run and not self._end_run(run, False):
                    return None
                tail = b"" if op == 1 else None if op else self._utf8_tail
                if tail is not None and not _utf8_so_far(data, pos + head, tail):
                    return self._leave(data, pos, run)  # websockets fails it
                self._partial = data[pos:]
                break
            payload = speedups.unmask(data, pos + head, n)
            pos += head + n
            if op:
                self._frag_type = Opcode.TEXT if op == 1 else Opcode.BINARY
                self._utf8_tail = b"" if op == 1 else None
            self._msg_size = size
            if run is None:
                run = [payload]
            else:
                run.append(payload)
            if b0 & 0x80 and not self._end_run(run, True):
                return None
        if run:
            self._end_run(run, False)
        return None

    def _leave(self, data: bytes, pos: int, run: list[bytes] | None) -> bytes | None:
        """Add *run* to the message, then leave the fast path at *pos* (None: the
        run's UTF-8 was bad, and nothing more is read)."""
        if run and not self._end_run(run, False):
            return None
        return self._leave_fast_path(data, pos)

    def _end_run(self, run: list[bytes], fin: bool) -> bool:
        """Add the fragments read in a row (*run*, emptied) to the message as one piece,
        one UTF-8 decode for them all; False when it is bad, and the connection fails
        (1007). Per fragment of 256 bytes that halved the cost (bench/ws_inmemory.py)."""
        payload = run[0] if len(run) == 1 else b"".join(run)
        run.clear()
        if self._add_fragment(payload, fin):
            return True
        self._fast = False
        self._partial = b""
        self._failed()
        self._flush()
        return False

    def _inflate(self, op: int, payload: bytes) -> bytes | None:
        """A whole compressed message's payload, inflated by permessage-deflate's own
        ``decode`` (its context, its zip-bomb limit); None once it failed the connection."""
        assert self._deflate is not None
        opcode = Opcode.TEXT if op == 1 else Opcode.BINARY
        try:
            frame = self._deflate.decode(
                Frame(opcode, payload, True, True), max_size=self._max_size
            )
        except PayloadTooBig as exc:
            self._fast_failed(CloseCode.MESSAGE_TOO_BIG, str(exc), exc)
            return None
        except ProtocolError as exc:
            self._fast_failed(CloseCode.PROTOCOL_ERROR, str(exc), exc)
            return None
        return bytes(frame.data)

    def _leave_fast_path(self, data: bytes, pos: int) -> bytes:
        """Hand websockets the rest of *data*, from *pos*, with the message in progress:
        its size so far, and (for text) where its UTF-8 stands."""
        self._fast = False
        if self._frag_type is not None:
            self.ws.current_size = self._msg_size
            self._tracker.continue_message(self._utf8_tail)
        self._flush()
        return data[pos:]

    def _fast_failed(self, code: CloseCode, reason: str, exc: Exception) -> None:
        """A frame on the fast path broke the protocol; the rest of the data is dropped."""
        ws = self.ws
        self._fast = False
        self._partial = b""
        ws.parser_exc = exc
        ws.fail(code, reason)
        if ws.failure is not None:
            self._failed()
        else:  # while closing: websockets has ended the connection
            self._flush()
            self._after_close()

    def _slow(self, data: bytes) -> None:
        ws = self.ws
        boundary, cut = False, -1
        if ws.state is State.OPEN and ws.failure is None and ws.held_close is None:
            boundary, cut = self._tracker.feed(data)
            if cut >= 0:  # bad UTF-8 in a frame still arriving: parse up to it
                data = data[:cut]
        ws.receive_data(data)
        for event in ws.events_received():
            if not self._on_frame(cast(Frame, event)):
                break  # bad UTF-8: nothing after it is delivered
        else:
            if cut >= 0:
                self._invalid_text(cast(UnicodeDecodeError, self._tracker.error))
        if ws.failure is not None:
            self._failed()
        self._flush()
        if ws.eof_sent or ws.state is State.CLOSED:
            self._after_close()
        elif (
            boundary
            and self._fast_ok
            and ws.state is State.OPEN
            and ws.failure is None
            and ws.held_close is None
            and not ws.reader.buffer
            and ws.current_size is None
        ):
            self._fast = True  # back at a frame boundary, outside a fragmented message

    def _on_frame(self, frame: Frame) -> bool:
        """Take one frame; False if it holds bad UTF-8 (the connection fails)."""
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            self._frag_type = op
            self._utf8_tail = b"" if op is Opcode.TEXT else None
            return self._add_fragment(frame.data, frame.fin)
        if op is Opcode.CONT:
            return self._frag_type is None or self._add_fragment(frame.data, frame.fin)
        if op is Opcode.PING:
            if not self._autoping:
                self._push(WSMessage(WSMsgType.PING, frame.data, ""))
        elif op is Opcode.PONG:
            if self._pong_handle is not None:
                self._pong_handle.cancel()
                self._pong_handle = None
            if not self._autoping:
                self._push(WSMessage(WSMsgType.PONG, frame.data, ""))
        elif op is Opcode.CLOSE:
            self._drop_message()
            rcvd = self.ws.close_rcvd or self.ws.held_close
            code = int(rcvd.code) if rcvd is not None else 1005
            self._push(WSMessage(WSMsgType.CLOSE, code, rcvd.reason if rcvd else ""))
        return True

    def _add_fragment(self, data: bytes | bytearray | memoryview, fin: bool) -> bool:
        """Add one frame's payload to the message; deliver it on the last one.

        Text is decoded fragment by fragment, so bad UTF-8 fails the connection (1007)
        at the fragment that holds it; a fragment may end inside a code point.
        """
        op, tail = self._frag_type, self._utf8_tail
        payload = data if type(data) is bytes else bytes(data)
        if tail is not None:
            part = tail + payload if tail else payload
            try:
                if part and part[len(part) - 1] < 0x80:  # ends at a code point: decode it all
                    text = part.decode("utf-8")  # (compiled, a direct C call)
                    self._utf8_tail = b""
                else:
                    text, used = _utf8_decode(part, "strict", fin)
                    self._utf8_tail = part[used:] if used < len(part) else b""
            except UnicodeDecodeError as exc:
                self._invalid_text(exc)
                return False
            if self._decode_text:
                self._texts.append(text)
        if tail is None or not self._decode_text:
            self._fragments.append(payload)
        if not fin:
            return True
        self._received += 1
        if op is Opcode.TEXT:
            msg = "".join(self._texts) if self._decode_text else b"".join(self._fragments)
            self._drop_message()
            self._push(speedups.new_message(WSMessage, (_TEXT, msg, "")))
        else:
            body = b"".join(self._fragments)
            self._drop_message()
            self._push(speedups.new_message(WSMessage, (_BINARY, body, "")))
        return True

    def _invalid_text(self, exc: UnicodeDecodeError) -> None:
        """Fail with 1007, even where websockets found a fault further on."""
        ws = self.ws
        self._drop_message()
        ws.failure, ws.parser_exc = None, exc
        ws.held_close = None  # a close frame after the bad one is not read either
        ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")

    def _drop_message(self) -> None:
        self._frag_type = self._utf8_tail = None
        self._fragments = []
        self._texts = []

    def _push(self, msg: WSMessage) -> None:
        if self.finished:
            return  # the handler has closed: what arrives now is dropped, as in aiohttp
        self._queue.append(msg)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if len(self._queue) >= _MAX_QUEUED and not self._paused and self.proto.transport:
            self._paused = True
            self.proto.pause_reading()  # the connection decides (its _update_reading)

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
            self._written += len(payload)
            transport.write(payload)
        if eof:
            transport.close()

    def _failed(self) -> None:
        """The received data broke the protocol: queue an ERROR after the messages before
        the fault. The close frame goes out when the handler reads it (as in aiohttp,
        the handler answers those messages first), or after the close timeout."""
        if self._error_queued:
            return
        self._error_queued = True
        self._fast = False
        self._drop_message()
        exc = self.ws.parser_exc
        self.exception = exc
        self._push(WSMessage(WSMsgType.ERROR, exc, None))
        self._fail_handle = self.proto.loop.call_later(self._close_timeout, self.fail_now)

    def fail_now(self) -> None:
        """Send the close frame of a failure found in received data, and end the connection."""
        if self._fail_handle is not None:
            self._fail_handle.cancel()
            self._fail_handle = None
        if self.ws.failure is None or self.closed:
            return
        self.ws.fail_now()
        self._flush()
        self._after_close()

    def _after_close(self) -> None:
        """The protocol is closed (handshake done, or it failed the connection)."""
        if self.closed:
            return
        self.closed = True
        ws = self.ws
        sent = ws.close_sent
        if self.close_code is None:
            self.close_code = int(sent.code) if sent is not None else 1006
        exc = ws.parser_exc
        if exc is not None and not self._error_queued:
            self.exception = exc
            self._error_queued = True
            self._push(WSMessage(WSMsgType.ERROR, exc, None))
        self._closed_event.set()
        self._stop_timers()

    def eof_received(self) -> None:
        self._lost = self._lost or not self.closed
        self.ws.receive_eof()
        self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.closed:  # gone before the close handshake was done
            self._lost = self.closed = True
            self.close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._closed_event.set()
        self._stop_timers()
        self._push(WS_CLOSED_MESSAGE)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def shutdown(self) -> None:
        """The server is stopping: close with 1001 (going away)."""
        if self.ws.failure is not None:
            self.fail_now()
        elif self.ws.state is State.OPEN and not self.send_close(
            CloseCode.GOING_AWAY, "server shutting down"
        ):
            self._push(WS_CLOSING_MESSAGE)

    # -- from the handler -----------------------------------------------------
    def _writable(self) -> asyncio.Transport:
        """The transport, if a frame may still be sent; else ``ClientDisconnectedError``."""
        transport = self.proto.transport
        if not self.ws.is_open or transport is None or transport.is_closing():
            raise ClientDisconnectedError("Cannot write to closing transport")
        return transport

    async def send(self, opcode: Opcode, data: bytes) -> None:
        ws = self.ws
        self._writable()
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

    def _ready(self) -> WSMessage | None:
        """The message ``receive()`` answers without waiting, or None: it must wait."""
        if self._waiter is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        if self._close_read and self.ws.held_close is not None:
            return WS_CLOSING_MESSAGE  # the client closed; the handler has yet to reply
        if self._queue:
            return self._take()
        if self.closed and self.proto.transport is None:
            return self._closed_seen()
        return None

    def _woken(self) -> WSMessage:
        """The message ``receive()`` answers once its wait is over."""
        if not self._queue:  # close() from another task emptied it
            return WS_CLOSING_MESSAGE if not self.closed else self._closed_seen()
        return self._take()

    def _take(self) -> WSMessage:
        """The first queued message, taken by the handler."""
        msg: WSMessage = self._queue.popleft()
        if self._paused:
            self.maybe_resume()
        mtype = msg.type
        if mtype is _TEXT or mtype is _BINARY:
            return msg
        if mtype is WSMsgType.ERROR and self.ws.failure is not None:
            self.fail_now()  # the handler has read up to the fault
        elif mtype is WSMsgType.CLOSE:
            self.close_code = msg.data  # as in aiohttp: once the handler reads it
            self._close_read = True
        elif mtype is WSMsgType.CLOSED:
            return self._closed_seen()
        return msg

    async def next_message(self, timeout: float | None) -> WSMessage:
        """The next message received, waiting up to *timeout* seconds (None: no limit)."""
        msg = self._ready()
        if msg is not None:
            return msg
        waiter = self._waiter = self.proto.loop.create_future()
        try:
            if timeout is not None:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            else:
                await waiter
        finally:
            self._waiter = None
        return self._woken()

    async def next_data(
        self, timeout: float | None, autoclose: bool, close_timeout: float
    ) -> WSMessage:
        """``async for``'s next message on an open connection: what
        ``WebSocketResponse.receive()`` then ``__anext__`` do, in one coroutine.

        Without a timeout it waits here rather than in :meth:`next_message`: one
        coroutine made and resumed per message instead of two (measured in the
        round-6 table of bench/PROFILE.md)."""
        msg = self._ready()
        if msg is None:
            if timeout is None:
                waiter = self._waiter = self.proto.loop.create_future()
                try:
                    await waiter
                finally:
                    self._waiter = None
                msg = self._woken()
            else:
                msg = await self.next_message(timeout)
        mtype = msg.type
        if mtype is _TEXT or mtype is _BINARY:
            return msg
        if mtype is WSMsgType.CLOSE and autoclose:
            await self.close(WSCloseCode.OK, b"", close_timeout)  # aiohttp replies 1000
        if mtype is WSMsgType.CLOSE or mtype is WSMsgType.CLOSING or mtype is WSMsgType.CLOSED:
            raise StopAsyncIteration
        return msg

    def _closed_seen(self) -> WSMessage:
        """The handler is told the connection is over. As in aiohttp, where reading
        then tries to send a close frame and fails, a client that vanished without
        closing leaves ``exception()`` a ``ConnectionResetError`` and code 1006."""
        if not self.finished:
            self.finished = True
            if self._lost:
                self.close_code = WSCloseCode.ABNORMAL_CLOSURE
                self.exception = ClientDisconnectedError("Cannot write to closing transport")
        return WS_CLOSED_MESSAGE

    def maybe_resume(self) -> None:
        if self._paused and len(self._queue) < _MAX_QUEUED // 2 and self.proto.transport:
            self._paused = False
            self.proto.resume_reading()

    def traffic(self) -> tuple[int, int, int, int]:
        """For --metrics: bytes written, data messages received and sent (no request)."""
        return (self._written, self._received, self._sent, 0)

    def write_data(self, first: int, data: bytes) -> bool:
        """Write one TEXT (0x81) or BINARY (0x82) frame; True if the caller should drain."""
        ws = self.ws
        transport = self.proto.transport  # as _writable(), inline on the hot path
        if not ws.is_open or transport is None or transport.is_closing():
            raise ClientDisconnectedError("Cannot write to closing transport")
        self._sent += 1
        deflate = self._deflate
        if deflate is not None or not self._fast_ok:  # ws.extensions, read as C fields
            if deflate is None:
                if first == 0x81:
                    ws.send_text(data)
                else:
                    ws.send_binary(data)
                self._flush()
                return self.proto.write_paused
            # permessage-deflate's own encode (its context, its level and window), and
            # the frame written here: websockets' send_frame and serialize cost ~30% of
            # the server's CPU per compressed echo (py-spy).
            opcode = Opcode.TEXT if first == 0x81 else Opcode.BINARY
            data = deflate.encode(Frame(opcode, data)).data  # type: ignore[assignment]
            first |= 0x40
        n = len(data)
        if n < 126:
            frame = _SHORT_HEADS[first][n] + data
        elif n < 65536:
            frame = bytes((first, 126)) + n.to_bytes(2, "big") + data
        else:
            frame = bytes((first, 127)) + n.to_bytes(8, "big") + data
        if ws.writes:  # anything the protocol queued goes first
            frame = b"".join(ws.data_to_send()) + frame
        self._written += len(frame)
        transport.write(frame)
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
        # ends the connection. close_code is the client's, as in aiohttp.
        self.close_code = int(ws.held_close.code)
        ws.close_rcvd, ws.held_close = ws.held_close, None
        ws.close_rcvd_then_sent = True
        ws.send_eof()
        self._flush()
        self._after_close()
        return True

    async def close(self, code: int, message: bytes, timeout: float) -> bool:
        """The handler's close, as aiohttp's: True if this call ended the WebSocket.

        What arrives from now on is dropped, and a ``receive()`` waiting in another
        task gets CLOSING; the client's close frame is awaited up to *timeout* seconds.
        """
        if self.finished:
            if self.proto.transport is not None and self.closed:
                self.proto.transport.close()
            return False
        self.finished = True
        self._queue.clear()
        self.maybe_resume()  # the client's answer must be read even if it was paused
        self._stop_timers()
        ws = self.ws
        if ws.failure is not None and not self.closed:
            self.fail_now()  # the failure's close code, not the handler's
            return True
        if self._lost:  # as aiohttp, whose close frame meets a closed transport
            self.close_code = WSCloseCode.ABNORMAL_CLOSURE
            self.exception = ClientDisconnectedError("Cannot write to closing transport")
            self.abort_later()
            return True
        if ws.state is not State.OPEN:  # the server's own close (shutdown) is under way
            if self.closed:
                self.abort_later()
            return False
        reason = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        if self.send_close(code, reason):
            return True  # it answered the client's close
        self._wake(WS_CLOSING_MESSAGE)
        await self._close_reply(timeout)
        return True

    async def _close_reply(self, timeout: float) -> None:
        """Wait for the client's answer to our close frame, then end the connection.

        No answer in time: code 1006 and ``TimeoutError()``; the client gone without
        one: 1006 and ``ClientDisconnectedError`` (unless a fault in what it sent is
        the exception already)."""
        try:
            await asyncio.wait_for(self._closed_event.wait(), timeout)
        except asyncio.TimeoutError:
            self.close_code = WSCloseCode.ABNORMAL_CLOSURE
            self.exception = asyncio.TimeoutError()
        except asyncio.CancelledError:
            self.close_code = WSCloseCode.ABNORMAL_CLOSURE
            self.abort_later()
            raise
        else:
            rcvd = self.ws.close_rcvd
            if rcvd is not None and not self._lost:
                self.close_code = int(rcvd.code)
            else:
                self.close_code = WSCloseCode.ABNORMAL_CLOSURE
                if self.exception is None:
                    self.exception = ClientDisconnectedError("Connection lost")
        self.closed = True
        self.abort_later()

    def _wake(self, msg: WSMessage) -> None:
        """Hand *msg* to a ``receive()`` waiting in another task, if there is one."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._queue.append(msg)
            waiter.set_result(None)

    def abort_later(self) -> None:
        transport = self.proto.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    # -- heartbeat --------------------------------------------------------------
    def start_heartbeat(self, interval: float) -> None:
        loop = self.proto.loop
        self._heartbeat_handle = loop.call_later(interval, self._send_heartbeat, interval)

    def _send_heartbeat(self, interval: float) -> None:
        ws = self.ws
        if ws.state is not State.OPEN or ws.held_close is not None or ws.failure is not None:
            return  # closing: nothing but the close frame may go out
        self.ws.send_ping(b"")
        self._flush()
        loop = self.proto.loop
        if self._pong_handle is None:
            self._pong_handle = loop.call_later(interval / 2, self._pong_not_received, interval)
        self._heartbeat_handle = loop.call_later(interval, self._send_heartbeat, interval)

    def _pong_not_received(self, interval: float) -> None:
        """No pong within half the interval: the connection is over (1006), and a
        ``receive()`` waiting gets an ERROR with the ``TimeoutError``, as in aiohttp."""
        self._pong_handle = None
        if self.finished:
            return
        exc = asyncio.TimeoutError(f"No PONG received after {interval / 2.0} seconds")
        self.close_code = WSCloseCode.ABNORMAL_CLOSURE
        self.exception = exc
        self.closed = self.finished = True
        self._queue.clear()
        self._closed_event.set()
        self._stop_timers()
        self._wake(WSMessage(WSMsgType.ERROR, exc, None))
        if self.proto.transport is not None:
            self.proto.transport.abort()

    def _stop_timers(self) -> None:
        for handle in (self._heartbeat_handle, self._pong_handle, self._fail_handle):
            if handle is not None:
                handle.cancel()
        self._heartbeat_handle = self._pong_handle = self._fail_handle = None


class MessageIterator:
    """``async for``'s iterator over a prepared WebSocket's messages, as
    ``WebSocketResponse.__aiter__`` returns it when neither ``receive`` nor
    ``__anext__`` is overridden: :meth:`__anext__` is :meth:`WSConnection.next_data`
    with the response's timeouts, or, once the connection is finished, the response's
    own ``__anext__``. Compiled, ``async for`` calls it through the type's C slot;
    the response's ``__anext__`` is a Python method (~1,000 instructions more per
    message, bench/PROFILE.md's round 7)."""

    __slots__ = ("_autoclose", "_close_timeout", "_conn", "_resp", "_timeout")

    def __init__(
        self,
        resp: WebSocketResponse[Any],
        conn: WSConnection,
        timeout: float | None,
        autoclose: bool,
        close_timeout: float,
    ) -> None:
        self._resp = resp
        self._conn = conn
        self._timeout = timeout
        self._autoclose = autoclose
        self._close_timeout = close_timeout

    def __aiter__(self) -> MessageIterator:
        return self

    def __anext__(self) -> Awaitable[WSMessage]:
        conn = self._conn
        if conn.finished:
            return self._resp.__anext__()
        return conn.next_data(self._timeout, self._autoclose, self._close_timeout)


def _utf8_so_far(data: bytes, start: int, tail: bytes) -> bool:
    """Whether the text payload that has arrived of a frame still arriving (from
    *start*, its mask the 4 bytes before) continues valid UTF-8 after *tail*, the end
    of the message's UTF-8 not yet decoded (b"": a new message, or a code point
    boundary).

    So a bad byte fails the connection when it arrives, not when its frame is
    complete; the check re-reads the payload at each read until the frame is whole
    (at most 64 KiB on the fast path).
    """
    if start >= len(data):
        return True
    try:
        _utf8_decode(tail + speedups.unmask(data, start, len(data) - start), "strict", False)
    except UnicodeDecodeError:
        return False
    return True


class _Tracker:
    """Follows the frames in the bytes websockets parses.

    ``feed`` returns True when the bytes fed so far end exactly at a frame boundary
    outside a fragmented message, so the fast path can resume. It also checks the
    UTF-8 of uncompressed text as it arrives, before websockets has the whole frame;
    ``error`` then says what was wrong.
    """

    __slots__ = ("_check", "_decoder", "_fragmented", "_head", "_key", "_skip", "error")

    def __init__(self) -> None:
        self._skip = 0  # payload bytes of the current frame still to come
        self._head = b""  # the start of a frame header split between reads
        self._fragmented = False
        self._decoder: codecs.IncrementalDecoder | None = None  # the current text message's
        self._check = False  # whether the current frame's payload is checked as UTF-8
        self._key = b""  # its mask, turned to line up with the next payload byte
        self.error: UnicodeDecodeError | None = None

    def feed(self, data: bytes) -> tuple[bool, int]:
        """(at a boundary, where to cut *data*): the cut is -1, or the index (maybe 0) of
        the first byte not to parse, in the frame that holds bad UTF-8."""
        held = len(self._head)
        if held:
            data = self._head + data
            self._head = b""
        pos, end = 0, len(data)
        while True:
            if self._skip:
                take = min(self._skip, end - pos)
                if self._check and not self._valid(data[pos : pos + take]):
                    return False, max(pos - held, 0)
                self._skip -= take
                pos += take
                if self._skip:
                    return False, -1
            if pos == end:
                return not self._fragmented, -1
            if end - pos < 2:
                self._head = data[pos:]
                return False, -1
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            size = 2 + (4 if b1 & 0x80 else 0) + (2 if n == 126 else 8 if n == 127 else 0)
            if end - pos < size:
                self._head = data[pos:]
                return False, -1
            if n == 126:
                n = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif n == 127:
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
            self._frame(b0, data[pos + size - 4 : pos + size] if b1 & 0x80 else b"")
            pos += size
            self._skip = n

    def continue_message(self, tail: bytes | None) -> None:
        """The fast path read the start of a fragmented message: follow it from here,
        at a frame boundary, from *tail*, the end of its UTF-8 not yet decoded (None:
        binary)."""
        self._fragmented = True
        self._skip = 0
        self._head = b""
        if tail is None:
            self._decoder = None
        else:
            self._decoder = _utf8_decoder()
            self._decoder.decode(tail)  # a code point's start: held, never an error

    def _frame(self, b0: int, key: bytes) -> None:
        """A frame header: follow the message, and say whether to check its payload."""
        opcode = b0 & 0x0F
        if opcode in (0, 1, 2):
            if opcode == 1:  # a compressed (RSV1) or unmasked message is websockets' to judge
                self._decoder = _utf8_decoder() if key and not b0 & 0x40 else None
            elif opcode == 2 or not self._fragmented:
                self._decoder = None  # binary, or a continuation of nothing
            self._fragmented = not (b0 & 0x80)
            self._check = self._decoder is not None and bool(key)
        else:
            self._check = False
        self._key = key

    def _valid(self, chunk: bytes) -> bool:
        """Unmask *chunk* (the next payload bytes) and check it continues valid UTF-8."""
        key = self._key
        plain = apply_mask(chunk, key)
        turn = len(chunk) % 4
        self._key = key[turn:] + key[:turn]
        assert self._decoder is not None
        try:
            self._decoder.decode(plain)
        except UnicodeDecodeError as exc:
            self.error = exc
            return False
        return True
