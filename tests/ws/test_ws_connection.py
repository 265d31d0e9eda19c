"""The WebSocket connection's strictness, case by case as the Autobahn testsuite checks it
(its case numbers in the names): raw masked frames written by hand to a real socket, and
exactly which frames come back. Below them, ``_Tracker``'s UTF-8 check in memory."""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any

import pytest

from lowserve import web
from lowserve.ws.connection import _Tracker

from conftest import MemoryTransport, serve
from test_websocket import HANDSHAKE

KEY = b"\x37\xfa\x21\x3d"
CLOSE_1000 = b"\x88\x02\x03\xe8"  # the server's whole reply to a client's close


def frame(op: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """One masked client frame (payloads under 64 KiB)."""
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    n = len(payload)
    head = bytes([b0, 0x80 | n]) if n < 126 else bytes([b0, 0xFE]) + struct.pack("!H", n)
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def close(code: int = 1000) -> bytes:
    return frame(8, struct.pack("!H", code))


def frames_of(data: bytes) -> list[tuple[int, bytes | int]]:
    """The server's frames as (first byte, payload); a close frame's payload as its code."""
    out: list[tuple[int, bytes | int]] = []
    i = 0
    while i < len(data):
        b0, n = data[i], data[i + 1] & 0x7F
        start = i + 2 + (2 if n == 126 else 8 if n == 127 else 0)
        if n >= 126:
            n = int.from_bytes(data[i + 2 : start], "big")
        payload = data[start : start + n]
        out.append((b0, int.from_bytes(payload[:2], "big") if b0 == 0x88 else payload))
        i = start + n
    return out


class Client:
    """A raw WebSocket client: the handshake, then frames written as the test says."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, extra: str = "") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((HANDSHAKE + extra + "\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 ")
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), 5)

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        out = await asyncio.wait_for(self.reader.read(), 5)
        self.writer.close()
        return out


def echo_handler(seen: list[Any], **options: Any) -> Any:
    """Autobahn's testee: echo TEXT and BINARY; note every message's type."""

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(**options)
        await ws.prepare(request)
        while True:
            msg = await ws.receive()
            seen.append(msg.type)
            if msg.type is web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type is not web.WSMsgType.PING:
                return ws

    return handler


async def exchange_frames(data: bytes, seen: list[Any] | None = None, **options: Any) -> bytes:
    """Send *data* in one write to an echo server; everything it sends back."""
    async with serve(echo_handler([] if seen is None else seen, **options)) as s:
        client = await Client.open(s.port)
        await client.send(data)
        return await client.rest()


# -- 7.1.x: after the client's close, nothing but the reply ------------------------------


@pytest.mark.parametrize("autoping", [True, False])
async def test_7_1_3_no_pong_after_a_close(autoping: bool) -> None:
    seen: list[Any] = []
    out = await exchange_frames(close() + frame(9, b"ping"), seen, autoping=autoping)
    assert out == CLOSE_1000
    assert seen == [web.WSMsgType.CLOSE]


async def test_7_1_4_no_echo_of_a_message_after_a_close() -> None:
    seen: list[Any] = []
    assert await exchange_frames(close() + frame(1, b"late"), seen) == CLOSE_1000
    assert seen == [web.WSMsgType.CLOSE]


async def test_7_1_2_a_second_close_is_ignored() -> None:
    assert await exchange_frames(close() + close(1001)) == CLOSE_1000


async def test_7_1_5_close_between_fragments_ends_cleanly() -> None:
    """A close may come between two fragments (control frames may, RFC 6455 5.4): it is
    answered with 1000, and the unfinished message is dropped."""
    seen: list[Any] = []
    data = frame(1, b"frag", fin=False) + close() + frame(0, b"ment")
    assert await exchange_frames(data, seen) == CLOSE_1000
    assert seen == [web.WSMsgType.CLOSE]


async def test_7_1_5_with_the_fragments_in_separate_reads() -> None:
    seen: list[Any] = []
    async with serve(echo_handler(seen)) as s:
        client = await Client.open(s.port)
        await client.send(frame(1, b"frag", fin=False) + frame(9, b"p"))
        assert await client.read(3) == b"\x8a\x01p"  # the ping inside the message: answered
        await client.send(close())
        assert await client.read(4) == CLOSE_1000
        assert await client.rest() == b""
    assert seen == [web.WSMsgType.CLOSE]


async def test_no_heartbeat_ping_while_the_close_waits_for_the_handler() -> None:
    """The handler reads the client's close only after six heartbeat intervals: in the
    meantime no ping goes out (one may have left before the close arrived)."""

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=0.05)
        await ws.prepare(request)
        await asyncio.sleep(0.3)  # busy elsewhere
        assert (await ws.receive()).type is web.WSMsgType.CLOSE
        return ws

    async with serve(handler) as s:
        client = await Client.open(s.port)
        await client.send(close())
        out = await client.rest()
    assert frames_of(out) in ([(0x88, 1000)], [(0x89, b""), (0x88, 1000)])


# -- 3.x, 4.x, 5.15: the messages before a bad frame are answered, then the failure ------


@pytest.mark.parametrize(
    "bad",
    [
        frame(1, b"rsv", rsv=2),  # 3.2
        frame(1, b"rsv", rsv=3),  # 3.3 (like 3.2, other bits)
        frame(5),  # 4.1.3: reserved data opcode
        frame(6, b"reserved"),  # 4.1.4
        frame(11),  # 4.2.3: reserved control opcode
        frame(12, b"reserved"),  # 4.2.4
        frame(0, b"orphan", fin=False),  # 5.15: a continuation of nothing
    ],
    ids=["3.2", "3.3", "4.1.3", "4.1.4", "4.2.3", "4.2.4", "5.15"],
)
async def test_messages_before_a_bad_frame_are_answered_first(bad: bytes) -> None:
    seen: list[Any] = []
    first = frame(1, b"Hello, world!")
    if bad[0] & 0x0F == 0:  # 5.15 starts with a fragmented message
        first = frame(1, b"fragment1", fin=False) + frame(0, b"fragment2")
    out = await exchange_frames(first + bad + frame(9, b"ping") + frame(1, b"after"), seen)
    text = b"fragment1fragment2" if bad[0] & 0x0F == 0 else b"Hello, world!"
    assert frames_of(out) == [(0x81, text), (0x88, 1002)]  # no pong, no echo of "after"
    assert seen == [web.WSMsgType.TEXT, web.WSMsgType.ERROR]


@pytest.mark.parametrize(
    ("bad", "code", "options"),
    [
        (frame(1, b"\xce\xba\xff"), 1007, {}),  # bad UTF-8, found on the fast path
        (frame(1, b"a", fin=False) + frame(0, b"\xff"), 1007, {}),  # ... in a fragment
        (frame(2, b"x" * 200), 1009, {"max_msg_size": 100}),  # too big on the fast path
    ],
    ids=["utf8", "utf8-fragment", "too-big"],
)
async def test_the_fast_path_answers_first_too(bad: bytes, code: int, options: Any) -> None:
    out = await exchange_frames(
        frame(2, b"ok") + frame(1, b"fine") + bad + frame(1, b"x"), **options
    )
    assert frames_of(out) == [(0x82, b"ok"), (0x81, b"fine"), (0x88, code)]


async def test_a_handler_that_does_not_read_still_fails_the_connection() -> None:
    """The failure waits for the handler to read up to it, but no longer than the
    response's close ``timeout``."""
    release, done = asyncio.Event(), asyncio.Event()
    result: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=0.1)
        await ws.prepare(request)
        await release.wait()
        result["msgs"] = [(await ws.receive()).type for _ in range(3)]
        result["code"], result["exc"] = ws.close_code, ws.exception()
        done.set()
        return ws

    async with serve(handler) as s:
        client = await Client.open(s.port)
        await client.send(frame(1, b"unread") + frame(5))
        out = await client.rest()
        release.set()
        await asyncio.wait_for(done.wait(), 5)
    assert frames_of(out) == [(0x88, 1002)]
    assert result["msgs"] == [web.WSMsgType.TEXT, web.WSMsgType.ERROR, web.WSMsgType.CLOSED]
    assert result["code"] == 1002 and result["exc"] is not None


async def test_closing_with_a_failure_pending_sends_the_failures_code() -> None:
    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        await ws.send_str(msg.data)
        await ws.close(code=4000)  # the ERROR is still unread
        return ws

    async with serve(handler) as s:
        client = await Client.open(s.port)
        await client.send(frame(1, b"one") + frame(1, b"two", rsv=4))
        out = await client.rest()
    assert frames_of(out) == [(0x81, b"one"), (0x88, 1002)]


# -- 6.4.x: bad UTF-8 fails at the fragment, or the bytes, that hold it -------------------

PART1 = "κόσμε".encode()
PART2 = b"\xf4\x90\x80\x80"  # U+110000: past the last code point
PART3 = b"edited"


@pytest.mark.parametrize("case", ["6.4.1", "6.4.2", "6.4.3", "6.4.4"])
async def test_6_4_bad_utf8_fails_before_the_message_ends(case: str) -> None:
    """6.4.1/6.4.2 send three fragments, 6.4.3/6.4.4 one frame in three writes; 6.4.2
    and 6.4.4 put the bad bytes one at a time. The connection fails (1007) at the bad
    bytes, though the rest of the message never comes."""
    seen: list[Any] = []
    if case in ("6.4.1", "6.4.2"):
        parts = [frame(1, PART1, fin=False), frame(0, PART2, fin=False)]
        if case == "6.4.2":
            parts[1:] = [frame(0, PART2[:1], fin=False), frame(0, PART2[1:], fin=False)]
    else:
        whole = frame(1, PART1 + PART2 + PART3)
        cut = 6 + len(PART1)
        parts = [whole[:cut], whole[cut : cut + 4]]
        if case == "6.4.4":
            parts[1:] = [whole[cut : cut + 1], whole[cut + 1 : cut + 4]]
    async with serve(echo_handler(seen)) as s:
        client = await Client.open(s.port)
        for part in parts:
            await client.send(part)
        out = await client.rest()  # the server closes without the rest of the message
    assert frames_of(out) == [(0x88, 1007)]
    assert seen == [web.WSMsgType.ERROR]


@pytest.mark.parametrize("split", [1, 2, 3])
async def test_a_code_point_split_between_fragments_or_reads_is_fine(split: int) -> None:
    text = "aé€😀z".encode()
    cut = 1 + split  # inside a 2-, 3- or 4-byte character
    whole = frame(1, text)
    async with serve(echo_handler([])) as s:
        client = await Client.open(s.port)
        await client.send(frame(1, text[:cut], fin=False) + frame(0, text[cut:]))
        assert await client.read(2 + len(text)) == bytes([0x81, len(text)]) + text
        await client.send(whole[: 6 + cut])  # one frame, in two writes
        await client.send(whole[6 + cut :])
        assert await client.read(2 + len(text)) == bytes([0x81, len(text)]) + text
        await client.send(close())
        assert await client.rest() == CLOSE_1000


async def test_compressed_fragments_are_checked_one_by_one() -> None:
    """With permessage-deflate the bytes are checked once inflated, fragment by fragment:
    the second fragment fails the connection, and the close frame behind it is not read."""
    comp = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    first = comp.compress(PART1) + comp.flush(zlib.Z_SYNC_FLUSH)
    second = comp.compress(PART2) + comp.flush(zlib.Z_SYNC_FLUSH)
    seen: list[Any] = []
    async with serve(echo_handler(seen)) as s:
        client = await Client.open(s.port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
        await client.send(frame(1, first, fin=False, rsv=4) + frame(0, second, fin=False) + close())
        out = await client.rest()
    assert frames_of(out) == [(0x88, 1007)]
    assert seen == [web.WSMsgType.ERROR]


async def test_a_message_ending_inside_a_code_point_fails() -> None:
    out = await exchange_frames(frame(1, b"ok\xe2\x82", fin=False) + frame(0, b""))
    assert frames_of(out) == [(0x88, 1007)]


# -- _Tracker in memory --------------------------------------------------------------------


def _feed(chunks: list[bytes]) -> list[tuple[bool, int]]:
    tracker = _Tracker()
    return [tracker.feed(chunk) for chunk in chunks]


def test_tracker_accepts_valid_text_fed_byte_by_byte() -> None:
    data = frame(1, "añ€".encode(), fin=False) + frame(9, b"\xff") + frame(0, "😀".encode())
    results = _feed([bytes([b]) for b in data])
    assert all(cut == -1 for _, cut in results)
    assert results[-1] == (True, -1)


def test_tracker_cuts_at_the_chunk_holding_bad_bytes() -> None:
    good = frame(2, b"\xff\xfe")  # binary: never checked
    bad = frame(1, b"ab\xc3\x28cd")
    assert _feed([good + bad]) == [(False, len(good) + 6)]  # the bad frame's payload
    assert _feed([good + bad[:8], bad[8:]]) == [(False, -1), (False, 0)]


def test_tracker_leaves_compressed_and_unmasked_text_to_websockets() -> None:
    rsv1 = frame(1, b"\xff", rsv=4)
    unmasked = b"\x81\x01\xff"
    assert _feed([rsv1, unmasked]) == [(True, -1), (True, -1)]


async def test_a_full_queue_pauses_reading_through_the_connection() -> None:
    # 64 messages unread: the WebSocket asks its connection to stop reading
    # (pause_reading), whose _update_reading pauses the transport and knows it did;
    # read down, the WebSocket asks again (resume_reading) and reading resumes.
    prepared, go, read_all, done = (asyncio.Event() for _ in range(4))
    got: list[str] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        prepared.set()
        await go.wait()
        try:
            async for msg in ws:
                got.append(msg.data)
                if len(got) == 100:
                    read_all.set()
        finally:
            done.set()
        return ws

    server = web.Server(handler, access_log=None)
    server.bind_loop(asyncio.get_running_loop())
    conn = server()
    transport = MemoryTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received((HANDSHAKE + "\r\n").encode())
    await asyncio.wait_for(prepared.wait(), 5)
    conn.data_received(b"".join(frame(1, b"%d" % i) for i in range(100)))
    assert transport.paused and conn.reading_paused and transport.pauses == 1
    conn.pause_for_body(False)  # no other input resumes an upgraded connection
    assert transport.paused
    go.set()
    await asyncio.wait_for(read_all.wait(), 5)
    assert got == [str(i) for i in range(100)]
    assert not transport.paused and not conn.reading_paused
    conn.data_received(close())
    await asyncio.wait_for(done.wait(), 5)
    conn.connection_lost(None)


# -- fragments on the fast path, and handing a message in progress to websockets -----------


async def test_a_ping_between_fragments_hands_the_message_over_intact() -> None:
    # The first fragment is read on the fast path; the ping goes to websockets, which must
    # then take the continuations as part of the same message.
    data = frame(1, b"one ", fin=False) + frame(9, b"p") + frame(0, b"two ", fin=False)
    data += frame(0, b"three") + frame(1, b"next") + close()
    assert frames_of(await exchange_frames(data)) == [
        (0x8A, b"p"),
        (0x81, b"one two three"),
        (0x81, b"next"),
        (0x88, 1000),
    ]


async def test_fragments_in_separate_reads_and_a_ping_in_a_later_one() -> None:
    async with serve(echo_handler([])) as s:
        client = await Client.open(s.port)
        await client.send(frame(2, b"\x00\x01", fin=False))
        await client.send(frame(0, b"\x02", fin=False))
        await client.send(frame(9, b"p"))
        assert frames_of(await client.read(3)) == [(0x8A, b"p")]
        await client.send(frame(0, b"\x03"))
        assert await client.read(6) == b"\x82\x04\x00\x01\x02\x03"
        await client.send(close())
        assert await client.rest() == CLOSE_1000


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(0, b"orphan"), 1002),  # a continuation of nothing
        (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),  # a new message inside one
        (frame(2, b"a", fin=False) + frame(0, b"b", fin=False, rsv=4), 1002),  # RSV1, no ext
        (frame(1, b"123456", fin=False) + frame(0, b"789012"), 1009),  # past max_msg_size 10
        (frame(1, b"ok", fin=False) + frame(0, b"\xff"), 1007),
        # fragments read in a row are decoded together: a fault after the bad UTF-8,
        # in the same read, still loses to it (the first fault in the stream wins)
        (frame(1, b"ok", fin=False) + frame(0, b"\xff", fin=False) + frame(0, b"7" * 9), 1007),
        (frame(1, b"ok", fin=False) + frame(0, b"\xff", fin=False) + frame(1, b"b"), 1007),
        (frame(2, b"ok", fin=False) + frame(0, b"\xff", fin=False) + frame(1, b"b"), 1002),
    ],
)
async def test_bad_fragments_fail_as_websockets_fails_them(data: bytes, code: int) -> None:
    seen: list[Any] = []
    out = await exchange_frames(data + close(), seen, max_msg_size=10)
    assert frames_of(out) == [(0x88, code)]
    assert seen == [web.WSMsgType.ERROR]


async def test_long_text_fragments_split_across_reads_are_checked_and_delivered() -> None:
    # Frames still arriving are kept whole on the fast path once their UTF-8 so far is
    # valid; a bad byte in a later read still fails at once (test_6_4_* above).
    text = ("é" * 20_000).encode()  # 40,000 bytes: two fragments of 20,000
    first, second = frame(1, text[:20_000], fin=False), frame(0, text[20_000:])
    data = first + second
    async with serve(echo_handler([])) as s:
        client = await Client.open(s.port)
        for at in range(0, len(data), 7_001):  # cuts inside headers, payloads, characters
            await client.send(data[at : at + 7_001])
            await asyncio.sleep(0.001)
        head = await client.read(4)
        assert head == b"\x81\x7e" + len(text).to_bytes(2, "big")
        assert await client.read(len(text)) == text
        await client.send(close())
        assert await client.rest() == CLOSE_1000


async def test_many_small_fragments_with_split_code_points_in_every_read() -> None:
    """The fast path adds the fragments of one read to the message together: code points
    cut between fragments, and runs cut between reads, come out whole."""
    text = ("aé€😀" * 150).encode()  # 1,500 bytes, characters of 1 to 4 bytes
    parts = [text[at : at + 5] for at in range(0, len(text), 5)]  # 300 fragments
    data = b"".join(
        frame(0 if i else 1, part, fin=i == len(parts) - 1) for i, part in enumerate(parts)
    )
    async with serve(echo_handler([])) as s:
        client = await Client.open(s.port)
        for at in range(0, len(data), 1_000):  # cuts inside headers and payloads
            await client.send(data[at : at + 1_000])
            await asyncio.sleep(0.001)
        assert await client.read(4) == b"\x81\x7e" + len(text).to_bytes(2, "big")
        assert await client.read(len(text)) == text
        await client.send(close())
        assert await client.rest() == CLOSE_1000


async def test_payloads_of_every_length_are_unmasked_exactly() -> None:
    """Unmasking (8 bytes a turn in the compiled build, then the last 0-7) gives back
    every payload exactly: lengths 0-40 and either side of the length encodings, with
    a key that differs in each byte and binary payloads of every byte value."""
    lengths = [*range(41), 125, 126, 127, 1_023, 65_535]
    payloads = [bytes((7 * i + n) % 256 for i in range(n)) for n in lengths]
    key = b"\x01\x80\xfe\x5a"
    data = b""
    for payload in payloads:
        n = len(payload)
        head = bytes([0x82, 0x80 | n]) if n < 126 else b"\x82\xfe" + struct.pack("!H", n)
        data += head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    async with serve(echo_handler([])) as s:
        client = await Client.open(s.port)
        await client.send(data + close())
        out = await client.rest()
    assert frames_of(out) == [(0x82, payload) for payload in payloads] + [(0x88, 1000)]
