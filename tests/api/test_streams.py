"""The body stream in memory: reads, limits, flow-control signals, 100-continue hook."""

from __future__ import annotations

import asyncio

import pytest

from lowserve.api.streams import EMPTY_STREAM, BodyStream


class FakeProtocol:
    def __init__(self) -> None:
        self.loop = asyncio.get_event_loop()
        self.pauses: list[bool] = []

    def pause_for_body(self, paused: bool) -> None:
        self.pauses.append(paused)


def make(high: int = 16, hook: object = None) -> tuple[BodyStream, FakeProtocol]:
    proto = FakeProtocol()
    return BodyStream(proto, high, hook), proto  # type: ignore[arg-type]


async def test_read_variants() -> None:
    s, _ = make(1000)
    s.feed_data(b"hello ")
    s.feed_data(b"world\nline2")
    s.feed_eof()
    assert await s.read(3) == b"hel"
    assert await s.readline() == b"lo world\n"
    assert await s.readany() == b"line2"
    assert await s.read() == b""
    assert s.at_eof()


async def test_read_waits_for_data() -> None:
    s, _ = make(1000)
    task = asyncio.create_task(s.read())
    await asyncio.sleep(0)
    s.feed_data(b"a")
    await asyncio.sleep(0)
    s.feed_data(b"b")
    s.feed_eof()
    assert await asyncio.wait_for(task, 1) == b"ab"


async def test_readexactly_incomplete() -> None:
    s, _ = make(1000)
    s.feed_data(b"abc")
    s.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await s.readexactly(5)
    assert info.value.partial == b"abc"


async def test_flow_control_signals() -> None:
    s, proto = make(16)  # aiohttp's marks: pause past 2 x 16 unread bytes, resume below 16
    assert s.get_read_buffer_limits() == (16, 32)
    s.feed_data(b"x" * 20)
    s.feed_data(b"x" * 12)
    assert proto.pauses == []
    s.feed_data(b"x")
    assert proto.pauses == [True]
    await s.read(17)
    assert proto.pauses == [True]  # 16 left: not below the low mark yet
    await s.read(1)
    assert proto.pauses == [True, False]


async def test_exception_propagates_and_second_reader_refused() -> None:
    s, _ = make()
    first = asyncio.create_task(s.read())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await s.read()
    s.set_exception(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError):
        await first


async def test_continue_hook_called_once_on_first_wait() -> None:
    calls = []
    s, _ = make(1000, lambda: calls.append(1))
    assert s.continue_pending
    task = asyncio.create_task(s.read())
    await asyncio.sleep(0)
    assert calls == [1]
    s.feed_data(b"x")
    s.feed_eof()
    await task
    assert calls == [1] and not s.continue_pending


async def test_continue_not_needed_when_data_already_there() -> None:
    calls = []
    s, _ = make(1000, lambda: calls.append(1))
    s.feed_data(b"abc")
    s.feed_eof()
    assert await s.read() == b"abc"
    assert calls == []


async def test_readchunk_marks_http_chunks() -> None:
    s, _ = make(1000)
    s.feed_data(b"abc")
    s.end_http_chunk()
    s.feed_data(b"de")
    s.feed_data(b"f")
    s.end_http_chunk()
    s.feed_eof()
    # as aiohttp's StreamReader: up to the chunk's end, across the pieces it came in
    assert await s.readchunk() == (b"abc", True)
    assert await s.readchunk() == (b"def", True)
    assert await s.readchunk() == (b"", False)


async def test_iterators() -> None:
    s, _ = make(1000)
    s.feed_data(b"abcdefg")
    s.feed_eof()
    assert [c async for c in s.iter_chunked(3)] == [b"abc", b"def", b"g"]


async def test_empty_stream() -> None:
    assert await EMPTY_STREAM.read() == b""
    assert await EMPTY_STREAM.readany() == b""
    assert EMPTY_STREAM.at_eof()
    assert [c async for c in EMPTY_STREAM.iter_any()] == []


async def test_readuntil_within_one_large_piece_and_across_pieces() -> None:
    """Lines read one by one out of one large piece, and separators split between
    pieces: the same bytes as reading the body whole and splitting it."""
    s, _ = make(1 << 20)
    lines = [b"line %d\r\n" % i for i in range(5000)]
    s.feed_data(b"".join(lines))
    for piece in (b"split at\r", b"\n the joint\r", b"\n", b"tail"):
        s.feed_data(piece)
    s.feed_eof()
    for line in lines:
        assert await s.readuntil(b"\r\n") == line
    assert await s.readuntil(b"\r\n") == b"split at\r\n"
    assert await s.readuntil(b"\r\n") == b" the joint\r\n"
    assert await s.readuntil(b"\r\n") == b"tail"
    assert s.at_eof()


async def test_readline_limit_still_holds() -> None:
    s, _ = make(16)
    for _ in range(5):
        s.feed_data(b"x" * 16)
    with pytest.raises(ValueError, match="too long"):
        await s.readline()


async def test_memory_follows_bytes_not_chunks() -> None:
    """A million 1-byte chunks: the buffer holds a few joined pieces, and the chunk
    ends already read past are dropped (they used to be kept, one int per chunk)."""
    s, _ = make(1 << 30)
    for i in range(1 << 20):
        s.feed_data(b"x")
        s.end_http_chunk()
        if i % 4096 == 4095:
            assert len(await s.readany()) == 4096
    assert s._chunk_ends is not None and len(s._chunk_ends) <= 2048
    for _ in range(100_000):
        s.feed_data(b"y")
        s.end_http_chunk()
    assert len(s._buffer) <= 100_000 // 16384 + 1
    assert await s.readchunk() == (b"y", True)
    assert len(await s.read(10)) == 10
