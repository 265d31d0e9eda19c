"""The small helpers of ``aiohttp.test_utils`` that test suites import: free ports,
listening sockets, event loops for tests that run their own, and a coroutine mock.

Each behaves as aiohttp's does, but :func:`make_mocked_coro`: with no *return_value*
its coroutine returns ``None`` (aiohttp's, a private sentinel), and with an awaitable
one it returns what that gives (aiohttp's awaits it and returns ``None``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import socket
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

__all__ = [
    "get_port_socket",
    "get_unused_port_socket",
    "loop_context",
    "make_mocked_coro",
    "setup_test_loop",
    "teardown_test_loop",
    "unused_port",
]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def unused_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_port_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A stream socket bound to *host*:*port* (``SO_REUSEADDR``), not yet listening."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def get_unused_port_socket(
    host: str, family: socket.AddressFamily = socket.AF_INET
) -> socket.socket:
    """A stream socket bound to an ephemeral port of *host*."""
    return get_port_socket(host, 0, family)


def make_mocked_coro(return_value: Any = None, raise_exception: Any = None) -> mock.Mock:
    """A ``Mock`` whose calls are recorded and return a coroutine, which raises
    *raise_exception* if given, else returns *return_value* (awaited, if awaitable)."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        if raise_exception is not None:
            raise raise_exception
        if inspect.isawaitable(return_value):
            return await return_value
        return return_value

    return mock.Mock(wraps=call)


def setup_test_loop(
    loop_factory: LoopFactory = asyncio.new_event_loop,
) -> asyncio.AbstractEventLoop:
    """A new event loop, set as the current one; end it with :func:`teardown_test_loop`."""
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    return loop


def teardown_test_loop(loop: asyncio.AbstractEventLoop, fast: bool = False) -> None:
    """Run *loop*'s pending callbacks once, close it, unset it, and (unless *fast*)
    collect garbage, so that what the test leaked is reported now."""
    if not loop.is_closed():
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.close()
    if not fast:
        gc.collect()
    asyncio.set_event_loop(None)


@contextlib.contextmanager
def loop_context(
    loop_factory: LoopFactory = asyncio.new_event_loop, fast: bool = False
) -> Iterator[asyncio.AbstractEventLoop]:
    """:func:`setup_test_loop` and :func:`teardown_test_loop` around a block."""
    loop = setup_test_loop(loop_factory)
    try:
        yield loop
    finally:
        teardown_test_loop(loop, fast=fast)
