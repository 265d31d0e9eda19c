"""conn.pipeline.Pipeline in memory: requests started in order, what waits while one
is answered, whether input must wait, and who is told when the connection is lost;
against a recording port (no socket, no parser)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from lowserve.api.exceptions import ClientDisconnectedError
from lowserve.conn.ending import Ending
from lowserve.conn.flow import WriteFlow
from lowserve.conn.pipeline import Pipeline
from lowserve.conn.reader import LONG_READ
from lowserve.conn.state import ConnState, PersistEnd
from lowserve.wire.errors import WireError


class Stream:
    """A body stream as the pipeline sees it: whether it holds reading paused, and
    the error it was failed with."""

    def __init__(self, paused: bool = False) -> None:
        self.reading_paused = paused
        self.errors: list[BaseException] = []

    def set_exception(self, exc: BaseException) -> None:
        self.errors.append(exc)


class Request:
    def __init__(self, name: str, content: Stream | None = None) -> None:
        self.name = name
        self.content = content if content is not None else Stream()


class Responder:
    def __init__(self) -> None:
        self.request: Request | None = None
        self.started: list[str] = []

    def start(self, request: Request) -> None:
        self.request = request
        self.started.append(request.name)


class Port:
    """A PipelinePort that keeps the state it is set to and records what it is asked."""

    def __init__(self) -> None:
        self.state = ConnState.IDLE
        self.reading_paused = False
        self.events: list[str] = []
        self.states: list[ConnState] = []

    def set_state(self, state: ConnState) -> None:
        self.state = state
        self.states.append(state)

    def parse(self, data: bytes | memoryview) -> bool:
        self.events.append(f"parse {data!r}")
        return True

    def parse_stopped(self, rest: bytes) -> None:
        self.events.append(f"stopped {rest!r}")

    def update_reading(self, body_full: bool | None = None) -> None:
        self.events.append("update_reading")

    def close(self) -> None:
        self.events.append("close")


def _pipeline(limit: int = 3) -> tuple[Pipeline, Port, Responder, SimpleNamespace, WriteFlow]:
    port, responder, flow = Port(), Responder(), WriteFlow()
    reader = SimpleNamespace(body=None, in_head=False, body_left=0)
    opts = SimpleNamespace(max_pipeline=limit)
    pipeline = Pipeline(port, cast(Any, opts), cast(Any, reader), cast(Any, responder), flow)
    return pipeline, port, responder, reader, flow


def _received(pipeline: Pipeline, port: Port, request: Request) -> None:
    pipeline.received(cast(Any, request), False, port.state)


def test_requests_start_in_the_order_they_arrived_and_a_full_queue_asks_to_pause() -> None:
    pipeline, port, responder, _, _ = _pipeline(limit=2)
    for name in ("a", "b", "c"):
        _received(pipeline, port, Request(name))
    assert responder.started == ["a"]
    assert port.states == [ConnState.BUSY]
    assert port.events == ["update_reading"]  # b and c fill the queue of two
    assert pipeline.input_waits(False)
    pipeline.advance()
    pipeline.advance()
    assert responder.started == ["a", "b", "c"]
    assert not pipeline.input_waits(False)
    pipeline.advance()
    assert port.states == [ConnState.BUSY] * 3 + [ConnState.IDLE]


def test_while_the_peer_reads_nothing_the_next_request_is_held() -> None:
    pipeline, port, responder, _, flow = _pipeline()
    flow.pause(100_000, 0.0)
    _received(pipeline, port, Request("a"))
    assert responder.started == []
    assert port.state is ConnState.HELD
    flow.resume(0, 1.0)
    pipeline.advance()
    assert responder.started == ["a"]


def test_input_waits_for_a_full_body_stream_found_out_when_not_told() -> None:
    pipeline, port, _, reader, _ = _pipeline()
    assert not pipeline.input_waits(None)
    assert pipeline.input_waits(True)
    reader.body = Stream(paused=True)  # the body arriving holds reading paused
    assert pipeline.input_waits(None)
    reader.body = None
    _received(pipeline, port, Request("a", Stream(paused=True)))  # the one answered
    assert pipeline.input_waits(None)
    assert not pipeline.input_waits(False)


def test_input_waits_while_bytes_are_held_back() -> None:
    pipeline, _, _, _, _ = _pipeline()
    pipeline.hold_back(b"GET / HTTP/1.1\r\n")
    assert pipeline.input_waits(False)


@pytest.mark.parametrize(
    ("end", "waits"),
    [(PersistEnd.DRAINING, False), (PersistEnd.CUT_SHORT, True), (PersistEnd.PEER_CLOSED, True)],
)
def test_input_waits_once_keep_alive_ended_unless_draining(end: PersistEnd, waits: bool) -> None:
    pipeline, _, _, _, _ = _pipeline()
    ending = Ending(cast(Any, Port()), cast(Any, None), cast(Any, None), cast(Any, None))
    pipeline.ending = ending
    assert not pipeline.input_waits(False)
    ending.end(end)
    assert pipeline.input_waits(False) is waits


async def test_lost_fails_whatever_waits_on_the_connection_once() -> None:
    pipeline, port, _, reader, flow = _pipeline()
    answered = Request("a")
    _received(pipeline, port, answered)
    queued = Request("b")
    _received(pipeline, port, queued)
    pipeline.queue.append(WireError(400, "refused behind it"))
    arriving = reader.body = Stream()
    flow.pause(100_000, 0.0)
    writer = asyncio.ensure_future(flow.wait(asyncio.get_running_loop()))
    await asyncio.sleep(0)  # the writer waits on the full buffer
    pipeline.lost()
    errors = arriving.errors + queued.content.errors + answered.content.errors
    assert len(errors) == 3
    assert all(type(e) is ClientDisconnectedError for e in errors)
    assert len({id(e) for e in errors}) == 1  # one error, made once
    assert pipeline.queue == []
    with pytest.raises(ClientDisconnectedError):
        await asyncio.wait_for(writer, 5)


async def test_lost_fails_a_writer_that_alone_waits() -> None:
    pipeline, _, _, _, flow = _pipeline()
    flow.pause(100_000, 0.0)  # no request, no body: only a writer held by the buffer
    writer = asyncio.ensure_future(flow.wait(asyncio.get_running_loop()))
    await asyncio.sleep(0)
    pipeline.lost()
    with pytest.raises(ClientDisconnectedError):
        await asyncio.wait_for(writer, 5)


def test_lost_on_an_idle_connection_tells_nobody() -> None:
    pipeline, _, _, _, _ = _pipeline()
    pipeline.lost()  # nothing to fail: no error is made
    assert pipeline.queue == []


def test_the_body_answered_and_arriving_is_failed_once() -> None:
    pipeline, port, _, reader, _ = _pipeline()
    body = Stream()
    _received(pipeline, port, Request("a", body))
    reader.body = body  # the request answered is still receiving its body
    pipeline.lost()
    assert len(body.errors) == 1


def test_data_fits_when_the_requests_it_can_complete_fit_the_queue() -> None:
    """Every head ends with an empty line: data fits while its empty lines plus the
    queue stay under the limit. Body bytes still due are not searched, and a long read
    that begins a request does not fit (feed parses its head first)."""
    pipeline, port, _, reader, _ = _pipeline(limit=3)
    head = b"GET / HTTP/1.1\r\n\r\n"
    assert pipeline.fits(head * 2)
    assert not pipeline.fits(head * 3)
    _received(pipeline, port, Request("a"))
    _received(pipeline, port, Request("b"))  # queued behind a
    assert pipeline.fits(head) and not pipeline.fits(head * 2)
    reader.body_left = 100  # a body arriving: its bytes hold no head
    assert pipeline.fits(b"\r\n\r\n" * 25)
    assert pipeline.fits(b"\r\n\r\n" * 25 + head)
    assert not pipeline.fits(b"\r\n\r\n" * 25 + head * 2)
    reader.body_left = -1  # a chunked body: every byte is searched
    assert not pipeline.fits(b"\r\n\r\n" * 2)
    reader.body_left = 0
    pipeline.advance()
    pipeline.advance()
    assert not pipeline.fits(b"x" * (LONG_READ + 1))
    assert pipeline.fits(b"x" * LONG_READ)
    reader.in_head = True  # a long read that ends a head is counted, as slice_end cuts it
    assert pipeline.fits(b"x" * (LONG_READ + 1))
    assert not pipeline.fits(b"\r\n\r\n" * 3 + b"x" * LONG_READ)


def test_what_follows_where_parsing_stopped_goes_to_the_connection() -> None:
    """Parsing stops (an upgrade head waits, a refusal): the bytes past the slice are
    handed to the connection's parse_stopped, not dropped; a feed within that parse
    that held bytes back keeps them ahead of the rest."""
    pipeline, port, _, reader, _ = _pipeline(limit=1)
    reader.slice_end = lambda data, pos, room: pos + 2  # slices of two bytes

    def stop(data: bytes | memoryview) -> bool:
        port.events.append(f"parse {data!r}")
        return False  # a refusal, an upgrade head waiting, the connection taken over

    port.parse = stop  # type: ignore[method-assign]
    pipeline.feed(b"aabbcc")
    assert port.events == ["parse b'aa'", "stopped b'bbcc'"]

    pipeline, port, _, reader, _ = _pipeline(limit=2)
    reader.slice_end = lambda data, pos, room: pos + 2

    def parse(data: bytes | memoryview) -> bool:
        port.events.append(f"parse {data!r}")
        if data == b"aa":
            pipeline.hold_back(b"held")  # as a feed of an upgrade's declined tail may
        return True

    port.parse = parse  # type: ignore[method-assign]
    pipeline.feed(b"aabbcc")
    assert port.events == ["parse b'aa'", "update_reading"]
    assert pipeline.unparsed == bytearray(b"heldbbcc")
