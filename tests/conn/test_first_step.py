"""A handler's first step (``conn/step.py``, in C in the compiled build): what it
returned, what it waited on and what it raised each come back whole, and nothing is
leaked or freed early. Run on whichever build is installed (CI runs both)."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import pytest

from lowserve import web
from lowserve.conn import step

from conftest import MemoryTransport, parse_responses

GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
NOT_A_RESPONSE = ("not", "a", "response")


async def _answers(
    handler: Callable[[web.BaseRequest], Awaitable[Any]], count: int, *, eager: bool
) -> list[tuple[int, dict[str, str], bytes]]:
    """*count* requests to *handler* on one in-memory connection, each sent once the
    one before is answered: from a loop callback (*eager*: the step runs from
    ``data_received``) or from this task (the connection's task runs it)."""
    loop = asyncio.get_running_loop()
    server = web.Server(handler, access_log=None)
    conn = server()
    transport = MemoryTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    try:
        for n in range(1, count + 1):
            if eager:
                loop.call_soon(conn.data_received, GET)
            else:
                conn.data_received(GET)
            for _ in range(200):
                await asyncio.sleep(0)
                if server.requests_count == n:
                    break
            assert server.requests_count == n
        for _ in range(3):  # the end-of-iteration flush
            await asyncio.sleep(0)
    finally:
        conn.connection_lost(None)
    return parse_responses(b"".join(transport.out))


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "in-task"])
async def test_a_returned_value_is_neither_leaked_nor_freed(
    eager: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(request: web.BaseRequest) -> Any:
        return NOT_A_RESPONSE

    before = sys.getrefcount(NOT_A_RESPONSE)
    with caplog.at_level(logging.ERROR, logger="lowserve.server"):
        answers = await _answers(handler, 50, eager=eager)
    assert [status for status, _, _ in answers] == [500] * 50
    assert sys.getrefcount(NOT_A_RESPONSE) == before
    assert "got ('not', 'a', 'response')" in caplog.text


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "in-task"])
async def test_what_a_handler_waits_on_is_neither_leaked_nor_freed(eager: bool) -> None:
    futures: list[asyncio.Future[str]] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        fut = asyncio.get_running_loop().create_future()
        futures.append(fut)
        asyncio.get_running_loop().call_soon(fut.set_result, "waited")
        return web.Response(text=await fut)

    answers = await _answers(handler, 20, eager=eager)
    assert [body for _, _, body in answers] == [b"waited"] * 20
    assert len(futures) == 20
    # Held by the list, getrefcount's argument and the loop variable only.
    assert [sys.getrefcount(fut) for fut in futures] == [3] * 20


class _Ready:
    """An awaitable that is not a coroutine: done at once, or after one bare yield."""

    def __init__(self, wait: bool) -> None:
        self.wait = wait

    def __await__(self) -> Generator[None, None, web.Response]:
        if self.wait:
            yield None  # a bare yield: the task steps it again at once
        return web.Response(text="awaitable")


@pytest.mark.parametrize("wait", [False, True], ids=["at-once", "after-a-yield"])
async def test_a_handler_may_return_any_awaitable(wait: bool) -> None:
    def handler(request: web.BaseRequest) -> Awaitable[web.Response]:
        return _Ready(wait)

    answers = await _answers(handler, 3, eager=True)
    assert [(status, body) for status, _, body in answers] == [(200, b"awaitable")] * 3


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "in-task"])
async def test_a_raised_error_keeps_the_handlers_traceback(
    eager: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing_handler(request: web.BaseRequest) -> web.Response:
        raise LookupError("no such thing")

    with caplog.at_level(logging.ERROR, logger="lowserve.server"):
        answers = await _answers(failing_handler, 1, eager=eager)
    assert [status for status, _, _ in answers] == [500]
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    exc = record.exc_info[1]
    assert isinstance(exc, LookupError)
    frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    assert frames[-1] == "failing_handler"


def test_the_pure_first_step_reports_return_yield_and_raise() -> None:
    """step.py's version (the one the pure build runs): the same three outcomes."""

    async def returns() -> str:
        return "value"

    async def waits() -> str:
        await asyncio.sleep(0)
        return "later"

    async def raises() -> str:
        raise KeyError("k")

    assert step.first(returns(), lambda coro, pending: ("resumed", pending)) == "value"
    coro = waits()
    assert step.first(coro, lambda c, pending: (c, pending)) == (coro, None)
    coro.close()
    with pytest.raises(KeyError):
        step.first(raises(), lambda coro, pending: None)
