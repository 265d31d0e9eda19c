"""The write side (``conn/output.py``) and the server's end-of-iteration flush: answers a
loop iteration computes leave together, in batches of at most ``FLUSH_BATCH``
connections, and in the order each connection's were given."""

from __future__ import annotations

import asyncio
from typing import Any

from lowserve import web
from lowserve.conn.server import FLUSH_BATCH

from conftest import MemoryTransport, hello, parse_responses

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def _connections(server: web.Server, count: int) -> tuple[list[Any], list[MemoryTransport]]:
    """*count* in-memory connections of *server*, and their transports."""
    conns, transports = [], []
    for _ in range(count):
        conn, transport = server(), MemoryTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conns.append(conn)
        transports.append(transport)
    return conns, transports


async def test_a_busy_iterations_answers_leave_in_batches() -> None:
    """One loop iteration reads a request on each of 2.5 batches' worth of connections
    (their handlers answer at once). Each full batch is written as the next connection
    answers, so that a read's answers are never split; the last part at the end of the
    iteration."""
    loop = asyncio.get_running_loop()
    server = web.Server(hello, access_log=None)
    conns, transports = _connections(server, FLUSH_BATCH * 2 + FLUSH_BATCH // 2)
    written_after: list[int] = []  # connections written to, after each read

    def one_iteration() -> None:
        for conn in conns:
            conn.data_received(GET)
            written_after.append(sum(1 for t in transports if t.out))

    try:
        loop.call_soon(one_iteration)  # from a callback, as a read is: handlers run eagerly
        for _ in range(200):
            await asyncio.sleep(0)
            if all(t.out for t in transports):
                break
        assert written_after[FLUSH_BATCH - 1] == 0  # held while the batch fills
        assert written_after[FLUSH_BATCH] == FLUSH_BATCH
        assert written_after[2 * FLUSH_BATCH - 1] == FLUSH_BATCH
        assert written_after[2 * FLUSH_BATCH] == 2 * FLUSH_BATCH
        assert written_after[-1] == 2 * FLUSH_BATCH  # the rest: at the iteration's end
        for transport in transports:
            [(status, _, body)] = parse_responses(b"".join(transport.out))
            assert (status, body, len(transport.out)) == (200, b"OK", 1)
    finally:
        for conn in conns:
            conn.connection_lost(None)


async def test_pipelined_answers_of_one_read_leave_in_one_write() -> None:
    """A read of several pipelined requests whose handlers answer at once: one write,
    the answers in order, even when a batch fills while they are queued."""
    loop = asyncio.get_running_loop()

    async def numbered(request: web.BaseRequest) -> web.Response:
        return web.Response(text=request.query["n"])

    server = web.Server(numbered, access_log=None)
    # a batch is written while one of them reads
    conns, transports = _connections(server, FLUSH_BATCH + 2)
    reads = b"".join(b"GET /?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in range(5))

    def one_iteration() -> None:
        for conn in conns:
            conn.data_received(reads)

    try:
        loop.call_soon(one_iteration)
        for _ in range(200):
            await asyncio.sleep(0)
            if all(t.out for t in transports):
                break
        for transport in transports:
            answers = parse_responses(b"".join(transport.out))
            assert [body for _, _, body in answers] == [b"0", b"1", b"2", b"3", b"4"]
            assert len(transport.out) == 1
    finally:
        for conn in conns:
            conn.connection_lost(None)
