"""Server's sweeper in memory: a pass over many connections is cut into loop turns."""

from __future__ import annotations

import asyncio

import pytest

from lowserve import web
from lowserve.conn import server as server_module
from lowserve.conn.protocol import HttpProtocol

from conftest import MemoryTransport


async def _hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="hi")


class _Closing(MemoryTransport):
    """Closing it loses its connection an iteration later, as a real transport does."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.protocol: asyncio.Protocol | None = None
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        if self.closes == 1 and self.protocol is not None:
            self.loop.call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closes > 0


def _connect(server: web.Server, loop: asyncio.AbstractEventLoop) -> tuple[HttpProtocol, _Closing]:
    """A new connection of *server*'s on a transport that closes as a real one does."""
    proto = server()
    transport = _Closing(loop)
    transport.protocol = proto
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport


async def test_a_sweep_over_many_connections_checks_a_slice_per_loop_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_module, "SWEEP_SLICE", 100)
    loop = asyncio.get_running_loop()
    server = web.Server(_hello, keepalive_timeout=0.2, access_log=None)
    slices: list[tuple[int, int]] = []  # (start, loop turn)
    turn = 0
    sweep_slice = server._sweep_slice

    def spy(conns: list[HttpProtocol], start: int, now: float) -> None:
        slices.append((start, turn))
        sweep_slice(conns, start, now)

    server._sweep_slice = spy  # type: ignore[method-assign]
    transports = []
    for _ in range(350):
        proto, transport = _connect(server, loop)
        proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        transports.append(transport)

    async def count_turns_until_all_closed() -> None:
        nonlocal turn
        while server.connections:
            turn += 1
            await asyncio.sleep(0)

    await asyncio.wait_for(count_turns_until_all_closed(), 10)  # Python 3.10 has no timeout()
    # Every idle connection timed out, each closed once.
    assert all(t.closes == 1 for t in transports)
    assert all(t.out and t.out[0].startswith(b"HTTP/1.1 200 OK") for t in transports)
    # Each pass over the 350 went 100 at a time, one slice a loop turn.
    firsts = [i for i, (start, _) in enumerate(slices) if start == 0]
    one_pass = slices[firsts[0] : firsts[0] + 4]
    assert [start for start, _ in one_pass] == [0, 100, 200, 300]
    assert len({t for _, t in one_pass}) == 4


async def test_a_connection_lost_during_a_sliced_pass_is_skipped_and_the_rest_swept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_module, "SWEEP_SLICE", 10)
    loop = asyncio.get_running_loop()
    server = web.Server(_hello, keepalive_timeout=0.2, access_log=None)
    protos = []
    for _ in range(30):
        protos.append(_connect(server, loop)[0])
    sweep_slice = server._sweep_slice

    lost = False

    def spy(conns: list[HttpProtocol], start: int, now: float) -> None:
        nonlocal lost
        if start == 10 and not lost:  # lost between two slices: its slice skips it
            lost = True
            protos[25].connection_lost(None)
        sweep_slice(conns, start, now)

    server._sweep_slice = spy  # type: ignore[method-assign]

    async def all_closed() -> None:
        while server.connections:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_closed(), 10)
    assert server.connections_closed == 30


async def test_the_shutdown_stops_a_sliced_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "SWEEP_SLICE", 5)
    loop = asyncio.get_running_loop()
    server = web.Server(_hello, keepalive_timeout=30, access_log=None)
    for _ in range(20):
        _connect(server, loop)
    calls: list[int] = []
    sweep_slice = server._sweep_slice

    def spy(conns: list[HttpProtocol], start: int, now: float) -> None:
        calls.append(start)
        sweep_slice(conns, start, now)

    server._sweep_slice = spy  # type: ignore[method-assign]
    assert server._sweeper is not None
    server._sweeper.cancel()  # the pass begins now rather than in 7.5 s
    server._sweep()
    assert calls == [0]  # its first slice now, the rest in the next turns
    await server.shutdown(1.0)
    assert server._sweeper is None
    done = len(calls)
    for _ in range(10):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    assert len(calls) == done  # nothing of the sweep is left scheduled
