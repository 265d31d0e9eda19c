"""The request reader in memory: bytes in, requests and refusals out, no socket."""

from __future__ import annotations

import asyncio
import random

import pytest

from lowserve import web
from lowserve.conn.reader import LONG_READ, RequestReader
from lowserve.options import ServerOptions
from lowserve.wire.errors import WireError


class ListSink:
    """A connection stand-in that lists what the reader delivers."""

    transport = None
    peer = "127.0.0.1"
    client_eof = False
    is_tls = False
    server_header = None
    client_max_fields = 1000
    write_paused = False

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.requests: list[tuple[web.BaseRequest, bool]] = []
        self.refusals: list[WireError] = []
        self.events: list[str] = []
        self.continues = 0

    # ReaderSink
    def request_received(self, request: web.BaseRequest, after: bool) -> None:
        self.requests.append((request, False))

    def upgrade_received(self, request: web.BaseRequest) -> None:
        self.requests.append((request, True))

    def body_complete(self) -> None:
        self.events.append("body")

    def body_dropped(self) -> None:
        self.events.append("dropped")

    def refuse(self, err: WireError) -> None:
        self.refusals.append(err)

    def send_continue(self) -> None:
        self.continues += 1

    # BodyOwner
    def pause_for_body(self, paused: bool) -> None:
        self.events.append("pause" if paused else "resume")


def _reader(**options: object) -> tuple[RequestReader, ListSink]:
    sink = ListSink()
    return RequestReader(sink, ServerOptions(**options), web.BaseRequest), sink  # type: ignore[arg-type]


async def _summary(sink: ListSink) -> list[tuple[str, str, str, bytes]]:
    """(method, path, version, body) of each request read."""
    out = []
    for request, _ in sink.requests:
        body = await request.read() if request.can_read_body else b""
        out.append((request.method, request.path, str(request.version), body))
    return out


GOOD = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"DELETE /d?x=1 HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 3000 + b"\r\n\r\n",
    b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
]


async def test_one_request_becomes_a_request_with_its_fields() -> None:
    reader, sink = _reader()
    head = b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-A: 1 \r\nx-a: 2\r\nX-A: 3 \t \r\n\r\n"
    assert reader.feed(head) is None
    [(request, upgrade)] = sink.requests
    assert (request.method, request.path_qs, request.host, upgrade) == ("GET", "/a?b=1", "h", False)
    assert request.headers.getall("X-A") == ["1", "2", "3"]  # trailing whitespace dropped
    assert not reader.in_head and reader.body is None and sink.refusals == []


async def test_a_pipelined_stream_cut_anywhere_reads_the_same() -> None:
    """Every request of a pipelined stream, whatever the segments it arrives in: the
    same requests and bodies as the stream read whole."""
    stream = b"".join(GOOD * 3)
    whole_reader, whole = _reader()
    whole_reader.feed(stream)
    expected = await _summary(whole)
    assert len(expected) == 3 * len(GOOD)
    for seed in range(300):
        rnd = random.Random(seed)
        reader, sink = _reader()
        pos = 0
        while pos < len(stream):
            size = rnd.choice([1, 2, 3, 7, 64, rnd.randint(1, 500)])
            reader.feed(stream[pos : pos + size])
            pos += size
        assert sink.refusals == [], seed
        assert await _summary(sink) == expected, seed
        assert sink.events.count("body") == 9, seed


BAD = [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Encoding: zstd\r\n\r\nab", 415),
    (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400),
    (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(6)) + b"\r\n",
        431,
    ),
]


@pytest.mark.parametrize(("raw", "status"), BAD)
async def test_a_malformed_request_is_one_refusal_with_its_status(raw: bytes, status: int) -> None:
    reader, sink = _reader(max_line_size=100, max_field_size=100, max_headers=5)
    reader.feed(raw)
    assert [err.status for err in sink.refusals] == [status]
    assert sink.requests == [] and not reader.in_head


@pytest.mark.parametrize(
    ("line", "status"),
    [(b"GET /" + b"a" * 300, 414), (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 300, 431)],
)
async def test_a_line_sent_a_byte_at_a_time_is_bounded(line: bytes, status: int) -> None:
    """llhttp buffers a line across segments without limit: the reader counts it."""
    reader, sink = _reader(max_line_size=100, max_field_size=100)
    for i in range(len(line)):
        reader.feed(line[i : i + 1])
        if sink.refusals:
            break
    assert [err.status for err in sink.refusals] == [status]
    assert i < 2 * 100 + 64  # refused before the line grew much past its bound


async def test_an_upgrade_head_stops_the_reader_and_returns_what_follows() -> None:
    reader, sink = _reader()
    tail = reader.feed(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
    )
    assert bytes(tail or b"") == b"\x81\x00"
    [(request, upgrade)] = sink.requests
    assert upgrade and request.path == "/ws"
    assert reader.resume(b"") is None  # no body to read first
    reader.fresh_parser()  # declined: what follows is HTTP again
    reader.feed(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r.path for r, _ in sink.requests] == ["/ws", "/next"]


async def test_an_upgrade_request_with_a_body_has_its_body_read() -> None:
    """llhttp skips such a body: it is read from a restated head, and the request is
    not handed over as an upgrade."""
    reader, sink = _reader()
    tail = reader.feed(
        b"POST /u HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n"
        b"Content-Length: 3\r\n\r\nabcGET /after HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert tail is not None
    restated = reader.resume(tail)
    assert restated is not None
    assert reader.feed(restated) is None
    assert [(r.path, up) for r, up in sink.requests] == [("/u", False), ("/after", False)]
    assert await sink.requests[0][0].read() == b"abc"


async def test_a_dropped_body_is_said_once_it_has_gone_by() -> None:
    reader, sink = _reader()
    reader.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    assert reader.body is not None and reader.body_left == 7
    reader.drop_body()
    reader.feed(b"defg")
    assert sink.events == []
    reader.feed(b"hij")
    assert sink.events == ["dropped"] and reader.body_left == 0


async def test_expect_continue_is_the_sinks_to_send_when_the_body_is_read() -> None:
    reader, sink = _reader()
    reader.feed(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    [(request, _)] = sink.requests
    assert request.content.continue_pending and sink.continues == 0
    reading = asyncio.ensure_future(request.read())
    await asyncio.sleep(0)
    assert sink.continues == 1
    reader.feed(b"ok")
    assert await reading == b"ok"


async def test_a_body_that_does_not_decode_fails_its_stream_not_the_reader() -> None:
    reader, sink = _reader()
    reader.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"
    )
    assert [err.status for err in sink.refusals] == [400]


PIECES = [*GOOD, *(raw for raw, _ in BAD), b"\r\n", b"\x00\xff", b"GET / HTTP/1.1\r\n"]


async def test_random_streams_give_requests_then_at_most_one_refusal() -> None:
    """Random mixes of good and bad requests cut at random points: the reader never
    raises, and once it refuses, the connection (this driver) feeds nothing more."""
    for seed in range(2000):
        rnd = random.Random(seed)
        reader, sink = _reader(max_line_size=100, max_field_size=100, max_headers=5)
        stream = b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 20)))
        pos = 0
        while pos < len(stream) and not sink.refusals:
            size = rnd.randint(1, 120)
            tail = reader.feed(stream[pos : pos + size])
            pos += size
            if tail is not None:
                restated = reader.resume(tail)
                if restated is None:
                    break  # an upgrade: the connection takes over from here
                reader.feed(restated)
        assert len(sink.refusals) <= 1, seed
        assert all(400 <= err.status < 600 for err in sink.refusals), seed


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame


@pytest.mark.parametrize("cut", [0, 1, 4, 10, 17, 18, 20, 23, 24])
async def test_http2_preface_returns_what_follows_it(cut: int) -> None:
    """The preface, cut anywhere across two segments: ``feed`` returns the bytes after
    it (as after an upgrade head) with ``preface`` set, and nothing is refused."""
    reader, sink = _reader()
    data = PREFACE + SETTINGS
    tail = reader.feed(data[:cut]) if cut else None
    if cut == len(PREFACE):  # the whole preface at once: nothing after it yet
        assert reader.preface and tail == b""
    else:
        assert tail is None and not reader.preface
        tail = reader.feed(data[cut:])
        assert reader.preface and bytes(tail or b"") == SETTINGS
    assert sink.refusals == []


async def test_http2_preface_after_a_request_is_505() -> None:
    reader, sink = _reader()
    tail = reader.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + PREFACE)
    if tail is not None:  # the sink was asked: this is not the connection's first message
        reader.refuse_preface()
    assert [e.status for e in sink.refusals] == [505]


async def test_refused_preface_is_505() -> None:
    reader, sink = _reader()
    assert reader.feed(PREFACE) == b""
    reader.refuse_preface()
    assert [e.status for e in sink.refusals] == [505]


@pytest.mark.parametrize("room", [1, 2, 5])
async def test_a_slice_completes_no_more_requests_than_there_is_room_for(room: int) -> None:
    """Fed slice by slice as slice_end cuts them, each slice completes at most *room*
    requests, and all 12 arrive in the end."""
    reader, sink = _reader()
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(12))
    data += b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n\r\n\r\n\r\n\r\n"
    pos = 0
    while pos < len(data):
        end = reader.slice_end(data, pos, room)
        before = len(sink.requests)
        assert reader.feed(data[pos:end]) is None
        assert len(sink.requests) - before <= room
        pos = end
    assert [r.path for r, _ in sink.requests] == [f"/{i}" for i in range(12)] + ["/b"]


async def test_a_long_read_that_begins_a_request_is_cut_after_its_head() -> None:
    """A read longer than LONG_READ that begins a request is cut after its first head,
    so its body's length is known before the rest is searched; from there the body is
    skipped, though it is full of empty lines, and the heads behind it are bounded."""
    reader, sink = _reader()
    body = b"\r\n\r\n" * 1024
    head = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
    after = b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n" * 3
    data = head + body + after
    assert len(data) > LONG_READ
    assert reader.slice_end(data, 0, 5) == len(head)
    assert reader.feed(data[: len(head)]) is None
    assert reader.body_left == len(body)
    end = reader.slice_end(data, len(head), 2)  # the body, one head whole, one cut short
    assert end == len(head) + len(body) + 2 * len(after) // 3 - 1
    assert reader.feed(data[len(head) : end]) is None
    assert reader.feed(data[end:]) is None
    assert [r.path for r, _ in sink.requests] == ["/a", "/b", "/b", "/b"]
    # A long read that ends a head begun before it is cut as any other read: a cut
    # after its first empty line could complete that head and the next one.
    reader, sink = _reader()
    assert reader.feed(b"GET /a HTTP/1.1\r\nHost: a\r") is None
    data = b"\n\r\n" + after * (LONG_READ // len(after) + 1)
    pos = 0
    while pos < len(data):
        end = reader.slice_end(data, pos, 1)
        before = len(sink.requests)
        assert reader.feed(data[pos:end]) is None
        assert len(sink.requests) - before <= 1
        pos = end
    assert len(sink.requests) == 1 + 3 * (LONG_READ // len(after) + 1)
    # A short read, and a long one that continues a body, are cut as before.
    reader, _ = _reader()
    assert reader.slice_end(after, 0, 5) == len(after)
    assert reader.slice_end(b"x" * (LONG_READ + 1), 0, 5) == LONG_READ + 1


_V10, _V11 = "HttpVersion(major=1, minor=0)", "HttpVersion(major=1, minor=1)"


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        # the version read off the request line (one head per feed) ...
        (
            [
                b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
            ],
            [_V10, _V11],
        ),
        # ... then asked of llhttp: a second head in the same data, a head split
        # after its request line, data that begins with a trailer line ending like a version
        ([b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\n\r\n"], [_V11, _V10]),
        (
            [
                b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n",
                b"\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
            ],
            [_V10, _V11],
        ),
        (
            [
                b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
                b"X: HTTP/1.1\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
            ],
            [_V11, _V10],
        ),
    ],
)
async def test_each_request_gets_its_own_version(pieces: list[bytes], expected: list[str]) -> None:
    """The version read off the first request line of the data is the first head's
    only: a later head, or one whose line came in earlier data, asks llhttp."""
    reader, sink = _reader()
    for piece in pieces:
        reader.feed(piece)
    assert not sink.refusals
    assert [(r.path, str(r.version)) for r, _ in sink.requests] == list(
        zip(["/a", "/b"], expected, strict=True)
    )


async def test_trailer_fields_are_dropped_not_given_to_the_next_request() -> None:
    """A chunked body's trailer fields belong to no head: once they were added to the
    next pipelined request's fields (a Host among them refused it as a duplicate)."""
    reader, sink = _reader()
    reader.feed(
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
        b"X-Trailer: t\r\nHost: t\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n"
    )
    assert not sink.refusals
    assert await _summary(sink) == [("POST", "/a", _V11, b"abc"), ("GET", "/b", _V11, b"")]
    second = sink.requests[1][0]
    assert second.raw_headers == ((b"Host", b"b"),)
    assert reader.body is None and reader.body_left == 0


async def test_an_oversized_trailer_field_is_refused_as_a_header_field() -> None:
    reader, sink = _reader(max_field_size=100)
    reader.feed(
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        b"X-Trailer: " + b"t" * 200 + b"\r\n\r\n"
    )
    assert [(e.status, e.detail) for e in sink.refusals] == [(431, "header field too long")]
