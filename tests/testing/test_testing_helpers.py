"""lowserve.testing.helpers beside aiohttp.test_utils': ports, sockets, loops, coroutine mocks."""

from __future__ import annotations

import asyncio
import socket
from types import ModuleType
from typing import Any

import aiohttp.test_utils
import pytest

import lowserve.testing
from lowserve import web

BOTH = pytest.mark.parametrize(
    "utils", [aiohttp.test_utils, lowserve.testing], ids=["aiohttp", "lowserve"]
)


@BOTH
def test_unused_port_is_free(utils: ModuleType) -> None:
    port = utils.unused_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing holds it


@BOTH
def test_port_sockets_are_bound_not_listening(utils: ModuleType) -> None:
    with utils.get_unused_port_socket("127.0.0.1") as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    port = utils.unused_port()
    with utils.get_port_socket("127.0.0.1", port, socket.AF_INET) as sock:
        assert sock.getsockname() == ("127.0.0.1", port)


@BOTH
async def test_make_mocked_coro(utils: ModuleType) -> None:
    ok = utils.make_mocked_coro(return_value=3)
    assert await ok(1, k=2) == 3
    ok.assert_called_once_with(1, k=2)
    fails = utils.make_mocked_coro(raise_exception=KeyError("k"))
    with pytest.raises(KeyError):
        await fails()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(7)
    awaited = utils.make_mocked_coro(return_value=future)
    result = await awaited()
    assert result in (7, None)  # aiohttp awaits it and returns None; lowserve returns 7


def test_make_mocked_coro_without_a_value_returns_none() -> None:
    assert asyncio.run(lowserve.testing.make_mocked_coro()()) is None


@BOTH
def test_loop_context_sets_runs_and_closes_a_loop(utils: ModuleType) -> None:
    ran: list[Any] = []
    with utils.loop_context() as loop:
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
        loop.call_soon(ran.append, "pending at teardown")
    assert loop.is_closed() and ran == ["pending at teardown"]


async def test_a_socket_factory_makes_the_servers_socket() -> None:
    made: list[tuple[str, int]] = []

    def factory(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
        made.append((host, port))
        return lowserve.testing.get_port_socket(host, port, family)

    async def ok(request: Any) -> Any:
        return web.Response()

    async with lowserve.testing.RawTestServer(ok, socket_factory=factory) as server:
        assert made == [("127.0.0.1", 0)] and server.port
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass


async def test_a_busy_port_fails_start_and_leaves_nothing_running() -> None:
    async def ok(request: Any) -> Any:
        raise AssertionError("never served")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = lowserve.testing.RawTestServer(ok, port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await server.start_server()
        assert not server.started
