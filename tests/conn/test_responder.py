"""Handlers start eagerly inside the connection's task: asyncio semantics still hold."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web as aioweb

from lowserve import web
from lowserve.api.response import StreamedBody
from lowserve.testing import make_mocked_request

from conftest import exchange, parse_responses, serve

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11's")
async def test_task_context_and_timeouts_hold_in_eager_handlers() -> None:
    seen: list[object] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        task = asyncio.current_task()
        assert task is not None and task is request.task
        var.set(request.path)
        async with asyncio.timeout(5):  # needs a current task
            await asyncio.sleep(0.01)
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        except TimeoutError:
            seen.append("timed out")
        assert asyncio.current_task() is task  # resumed inside the same task
        assert task.cancelling() == 0
        seen.append(var.get())
        return web.Response(text=var.get())

    async with serve(handler) as s:
        out = await exchange(
            s.port,
            b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    assert [b for _, _, b in parse_responses(out)] == [b"/one", b"/two"]
    assert seen == ["timed out", "/one", "timed out", "/two"]


async def test_sync_handlers_answer_without_waking_the_task() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text="now")

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        for _ in range(3):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert await reader.readexactly(3) == b"now"
        [conn] = s.server.connections
        assert (
            conn._responder._waiter is not None and conn._responder._work is None
        )  # parked, nothing pending
        writer.close()


async def test_server_logger_gets_a_timeout_and_a_cancelled_handler() -> None:
    # Server(logger=): the DEBUG records of a handler that timed out (504) and of one
    # cancelled when its client left (handler_cancellation) go to the logger given.
    seen = {
        "Request handler timed out.": asyncio.Event(),
        "Ignored premature client disconnection": asyncio.Event(),
    }

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            for text, event in seen.items():
                if record.getMessage().startswith(text) and record.levelno == logging.DEBUG:
                    event.set()

    mine = logging.getLogger("test_dispatch.mine")
    mine.setLevel(logging.DEBUG)
    catch = Catch()
    mine.addHandler(catch)
    started = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == "/timeout":
            raise asyncio.TimeoutError
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not cancelled")

    try:
        async with serve(handler, logger=mine, handler_cancellation=True) as s:
            raw = await exchange(
                s.port, b"GET /timeout HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert raw.startswith(b"HTTP/1.1 504 ")
            _, writer = await asyncio.open_connection("127.0.0.1", s.port)
            writer.write(b"GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
            await asyncio.wait_for(started.wait(), 5)
            writer.close()
            await asyncio.wait_for(seen["Ignored premature client disconnection"].wait(), 5)
        assert seen["Request handler timed out."].is_set()
    finally:
        mine.removeHandler(catch)


def test_a_response_keeps_the_connections_interface() -> None:
    # api.connection.Answer / WholeAnswer: what dispatch reads of a response, by public names.
    request = make_mocked_request("GET", "/")
    resp = web.Response(text="hi")
    assert resp.will_keep_alive is None and not resp.eof_sent and not resp.prepared
    data = resp.render_bytes(request)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhi")
    assert resp.will_keep_alive is True and resp.eof_sent and resp.keep_alive is True
    closing = web.Response(text="bye")
    closing.force_close()
    assert closing.will_keep_alive is False
    assert b"\r\nConnection: close\r\n" in closing.render_bytes(request)
    assert closing.will_keep_alive is False
    # A streamed body cannot leave in one write: refused before anything changes.
    with Path(__file__).open("rb") as f:
        streamed = web.Response(body=f)
        with pytest.raises(StreamedBody):
            streamed.render_bytes(request)
    assert not streamed.prepared and not streamed.eof_sent and streamed.will_keep_alive is None
    stream = web.StreamResponse()
    writer = stream.start_writer(request)
    assert writer is not None and stream.prepared and not stream.eof_sent
    assert stream.will_keep_alive is True
    assert request.protocol.written[0].startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("custom runtime error"), asyncio.TimeoutError("error"), asyncio.CancelledError()],
    ids=["error", "timeout", "cancelled"],
)
async def test_server_logger_gets_aiohttps_calls(exc: BaseException) -> None:
    """``Server(logger=)`` sees the calls aiohttp makes: ``exception()`` for a handler's
    error, ``debug()`` with aiohttp's words for a timeout (504) and a cancellation."""

    async def handler(request: Any) -> Any:
        raise exc

    calls = []
    for namespace in (aioweb, web):
        logger = mock.Mock()
        server = namespace.Server(handler, logger=logger, access_log=None, debug=True)
        runner = namespace.ServerRunner(server)
        await runner.setup()
        site = namespace.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            raw = await exchange(
                runner.addresses[0][1], b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
        finally:
            await runner.cleanup()
        calls.append((raw[:12], logger.exception.call_args, logger.debug.call_args))
        assert not logger.error.called
    (ours, ours_exception, ours_debug), (theirs, theirs_exception, theirs_debug) = (
        calls[1],
        calls[0],
    )
    assert ours == theirs
    if isinstance(exc, RuntimeError):
        assert ours == b"HTTP/1.1 500"
        assert ours_exception == theirs_exception
        assert ours_exception == mock.call(
            "Error handling request from %s", "127.0.0.1", exc_info=exc
        )
        return
    # (aiohttp also logs an ERROR 'Error handling request' without a traceback for a
    # 504; lowserve does not: see the differences in docs/migrating-from-aiohttp.md)
    assert ours_debug == theirs_debug
    if isinstance(exc, asyncio.TimeoutError):
        assert ours == b"HTTP/1.1 504"
        assert ours_debug == mock.call("Request handler timed out.", exc_info=exc)
    else:
        assert ours == b""
        assert ours_debug == mock.call("Ignored premature client disconnection")
