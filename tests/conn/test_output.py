"""The write side (``conn/output.py``) and the server's end-of-iteration flush: answers a
loop iteration computes leave together, in batches of at most ``FLUSH_BATCH``
connections, and in the order each connection's were given."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lowserve import web
from lowserve.conn.server import FLUSH_BATCH

from conftest import MemoryTransport, parse_responses

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def _connections(
    server: web.Server, count: int, make: Callable[[], MemoryTransport] = MemoryTransport
) -> tuple[list[Any], list[MemoryTransport]]:
    """*count* in-memory connections of *server*, and their transports (*make*'s)."""
    conns, transports = [], []
    for _ in range(count):
        conn, transport = server(), make()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conns.append(conn)
        transports.append(transport)
    return conns, transports


async def _one_iteration(conns: list[Any], transports: list[MemoryTransport], data: bytes) -> None:
    """Feed *data* to every connection from one loop callback (as reads arrive), then
    let the loop turn until every transport was written to (at most 200 turns)."""
    loop = asyncio.get_running_loop()

    def read_all() -> None:
        for conn in conns:
            conn.data_received(data)

    loop.call_soon(read_all)
    for _ in range(200):
        await asyncio.sleep(0)
        if all(t.out for t in transports):
            return


async def test_a_busy_iterations_answers_leave_in_batches() -> None:
    """One loop iteration answers a request on each of 2.5 batches' worth of
    connections. Each full batch is written as the next connection answers (so that a
    read's answers are never split), while the iteration goes on; the last part at the
    iteration's end. Whether the handlers run from ``data_received`` (3.11+) or in the
    connections' tasks (3.10, ``LOWSERVE_EAGER=0``), all run in one iteration."""
    answered = 0  # handlers run so far

    async def counted(request: web.BaseRequest) -> web.Response:
        nonlocal answered
        answered += 1
        return web.Response(text="OK")

    answered_at: list[int] = []  # for each write, in order: how many handlers had run

    class Recording(MemoryTransport):
        def write(self, data: bytes) -> None:
            answered_at.append(answered)
            super().write(data)

    server = web.Server(counted, access_log=None)
    count = FLUSH_BATCH * 2 + FLUSH_BATCH // 2
    conns, transports = _connections(server, count, Recording)
    try:
        await _one_iteration(conns, transports, GET)
        # the first batch when the 65th handler answered, the second at the 129th
        assert answered_at == (
            [FLUSH_BATCH + 1] * FLUSH_BATCH
            + [2 * FLUSH_BATCH + 1] * FLUSH_BATCH
            + [count] * (count - 2 * FLUSH_BATCH)
        )
        for transport in transports:
            [(status, _, body)] = parse_responses(b"".join(transport.out))
            assert (status, body, len(transport.out)) == (200, b"OK", 1)
    finally:
        for conn in conns:
            conn.connection_lost(None)


async def test_pipelined_answers_of_one_read_leave_in_one_write() -> None:
    """A read of several pipelined requests: one write, the answers in order, even
    when a batch fills while they are queued."""

    async def numbered(request: web.BaseRequest) -> web.Response:
        return web.Response(text=request.query["n"])

    server = web.Server(numbered, access_log=None)
    # a batch is written while one of them reads
    conns, transports = _connections(server, FLUSH_BATCH + 2)
    reads = b"".join(b"GET /?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in range(5))
    try:
        await _one_iteration(conns, transports, reads)
        for transport in transports:
            answers = parse_responses(b"".join(transport.out))
            assert [body for _, _, body in answers] == [b"0", b"1", b"2", b"3", b"4"]
            assert len(transport.out) == 1
    finally:
        for conn in conns:
            conn.connection_lost(None)
