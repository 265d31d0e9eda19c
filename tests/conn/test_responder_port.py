"""The responder without a connection: a port that records what it is asked to do.

An HTTP/2 stream is meant to be a :class:`~lowserve.conn.responder.ResponderPort` as
well, so nothing here may need HTTP/1.1's connection: no transport, no parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lowserve import web
from lowserve.api.request import BaseRequest
from lowserve.api.response import Response
from lowserve.conn import tasks
from lowserve.conn.responder import Responder
from lowserve.testing import make_mocked_request


class RecordingPort:
    """A ResponderPort that keeps what it was sent and told."""

    def __init__(self, open_: bool = True) -> None:
        self.peer: str | None = "198.51.100.7"
        self.open = open_
        self.sent: list[bytes] = []
        self.answered_with: list[tuple[BaseRequest, bool | None]] = []
        self.closed = 0
        self.done = asyncio.Event()
        self.finished_calls = 0

    def send_whole(self, request: BaseRequest, resp: Response) -> bool:
        if not self.open:
            return False
        self.sent.append(resp.render_bytes(request))
        return True

    def is_open(self) -> bool:
        return self.open

    def answered(self, request: BaseRequest, keep_alive: bool | None) -> None:
        self.answered_with.append((request, keep_alive))
        self.done.set()

    def close(self) -> None:
        self.closed += 1
        self.open = False
        self.done.set()

    def stopped(self) -> bool:
        return not self.open

    def finished(self) -> None:
        self.finished_calls += 1


async def _run(handler: Any, port: RecordingPort, **kw: Any) -> BaseRequest:
    server = web.Server(handler, access_log=None, **kw)
    responder = Responder(server, asyncio.get_running_loop(), port)
    request = make_mocked_request("GET", "/x")
    responder.start(request)
    await asyncio.wait_for(port.done.wait(), 5)
    return request


async def test_a_handler_that_does_not_wait_is_answered_within_start() -> None:
    """Started from a transport callback, a handler that does not wait is answered
    before start() returns (with the asyncio hooks; LOWSERVE_EAGER=0: by the task)."""
    port = RecordingPort()

    async def handler(request: BaseRequest) -> Response:
        return web.Response(text="hi")

    server = web.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    responder = Responder(server, loop, port)
    request = make_mocked_request("GET", "/x")
    seen: list[int] = []

    def from_a_transport_callback() -> None:  # as data_received calls it: no task runs
        responder.start(request)
        seen.append(len(port.sent))

    loop.call_soon(from_a_transport_callback)
    await asyncio.wait_for(port.done.wait(), 5)
    # No loop iteration passed between start() and the answer: it was out at once.
    assert seen == [1] if tasks.EAGER else seen == [0]
    assert port.sent[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert port.sent[0].endswith(b"\r\n\r\nhi")
    assert port.answered_with == [(request, True)]
    assert responder.request is None and responder.head_sent
    assert server.requests_count == 1


async def test_a_handler_that_waits_is_answered_by_the_task() -> None:
    port = RecordingPort()

    async def handler(request: BaseRequest) -> Response:
        await asyncio.sleep(0)
        assert asyncio.current_task() is not None
        return web.Response(text="later")

    request = await _run(handler, port)
    assert port.sent and port.sent[0].endswith(b"later")
    assert port.answered_with == [(request, True)]


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (web.HTTPNotFound(), 404),
        (RuntimeError("bug"), 500),
        (asyncio.TimeoutError(), 504),
    ],
)
async def test_what_a_handler_raises_is_answered(exc: BaseException, status: int) -> None:
    port = RecordingPort()

    async def handler(request: BaseRequest) -> Response:
        raise exc

    await _run(handler, port)
    assert port.sent[0].startswith(f"HTTP/1.1 {status} ".encode())
    # Errors close the connection after them; an HTTPException keeps it.
    [(_, keep_alive)] = port.answered_with
    assert keep_alive is (status == 404)


async def test_a_port_that_cannot_be_written_is_closed_not_answered() -> None:
    port = RecordingPort(open_=False)

    async def handler(request: BaseRequest) -> Response:
        return web.Response(text="lost")

    await _run(handler, port)
    assert port.sent == [] and port.answered_with == [] and port.closed == 1


async def test_a_streamed_answer_goes_through_the_request_connection() -> None:
    port = RecordingPort()

    async def handler(request: BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"part")
        return resp

    request = await _run(handler, port)
    # A stream writes through request.protocol (the api's Connection), not the port;
    # the port is told when it ended.
    assert port.sent == []
    assert b"4\r\npart\r\n" in request.protocol.written  # type: ignore[attr-defined]
    assert [r for r, _ in port.answered_with] == [request]


async def _answered(
    handler: Callable[[BaseRequest], Awaitable[Response]], loop: Any = None
) -> tuple[RecordingPort, Responder, asyncio.Task[None]]:
    """A responder that has answered one request with *handler*, and its task (on
    *loop*, the running loop by default)."""
    port = RecordingPort()
    server = web.Server(handler, access_log=None)
    responder = Responder(server, loop or asyncio.get_running_loop(), port)
    responder.start(make_mocked_request("GET", "/"))
    await asyncio.wait_for(port.done.wait(), 5)
    task = responder.task
    assert task is not None
    return port, responder, task


class FutureLoop:
    """The running loop, keeping each future it makes (a parked task's waiter)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.futures: list[asyncio.Future[Any]] = []

    def create_future(self) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        self.futures.append(future)
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


async def test_lost_ends_a_parked_task() -> None:
    async def handler(request: BaseRequest) -> Response:
        await asyncio.sleep(0)
        return web.Response()

    loop = FutureLoop(asyncio.get_running_loop())
    port, responder, task = await _answered(handler, loop)
    assert not task.done()  # parked, waiting for the next request
    [waiter] = loop.futures
    assert not waiter.done()
    port.open = False
    responder.lost()
    await asyncio.wait_for(asyncio.shield(task), 5)
    assert responder.task is None
    assert port.finished_calls == 1  # told once, as the task ended
    assert not task.cancelled()
    # Woken, not cancelled: a cancelled waiter would end the task all the same, at
    # the cost of raising and catching a CancelledError in it.
    assert waiter.done() and not waiter.cancelled()


async def test_lost_ends_a_parked_task_whose_port_has_not_stopped() -> None:
    # The port stopped (a closed connection): the parked task is woken and returns.
    # Not stopped (say, an HTTP/2 stream whose end is still to come): its waiter is
    # cancelled, and the task ends all the same.
    async def handler(request: BaseRequest) -> Response:
        return web.Response()

    port, responder, task = await _answered(handler)
    await asyncio.sleep(0)  # the task's first step: parked on its waiter
    assert not task.done() and not port.stopped()
    responder.lost()
    await asyncio.wait_for(asyncio.shield(task), 5)
    assert responder.task is None
