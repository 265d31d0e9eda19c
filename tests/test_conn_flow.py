"""lowserve.conn.flow in memory: writing's pause and drain, and the two stall clocks."""

from __future__ import annotations

import asyncio

import pytest

from lowserve.api.streams import BodyStream
from lowserve.conn.flow import BodyWatch, WriteFlow


async def test_writers_wait_for_resume_and_share_one_future() -> None:
    loop = asyncio.get_running_loop()
    flow = WriteFlow()
    flow.pause(buffered=70_000, now=0.0)
    assert flow.paused
    writers = [asyncio.ensure_future(flow.wait(loop)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers)
    flow.resume()
    await asyncio.wait_for(asyncio.gather(*writers), 1)
    assert not flow.paused


async def test_a_cancelled_writer_leaves_the_others_waiting() -> None:
    loop = asyncio.get_running_loop()
    flow = WriteFlow()
    flow.pause(buffered=1, now=0.0)
    first = asyncio.ensure_future(flow.wait(loop))
    second = asyncio.ensure_future(flow.wait(loop))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not second.done()
    flow.resume()
    await asyncio.wait_for(second, 1)


async def test_lost_fails_the_waiting_writers() -> None:
    loop = asyncio.get_running_loop()
    flow = WriteFlow()
    flow.pause(buffered=1, now=0.0)
    writer = asyncio.ensure_future(flow.wait(loop))
    await asyncio.sleep(0)
    flow.lost(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(writer, 1)
    flow.lost(ConnectionResetError("twice"))  # nothing waits: no error


def test_send_stall_counts_from_the_last_time_the_buffer_shrank() -> None:
    flow = WriteFlow()
    flow.pause(buffered=100, now=10.0)
    assert flow.stalled_for(100, now=12.0) == 2.0
    assert flow.stalled_for(150, now=13.0) == 3.0  # growing is no progress
    assert flow.stalled_for(90, now=14.0) == 0.0  # the peer took 10 bytes
    assert flow.stalled_for(90, now=20.0) == 6.0
    flow.pause(buffered=500, now=30.0)  # a new pause starts a new watch
    assert flow.stalled_for(500, now=31.0) == 1.0


class _Owner:
    """A connection as a body stream sees it (lowserve.api.connection.BodyOwner)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def pause_for_body(self, paused: bool) -> None:
        pass


async def test_body_stall_counts_only_while_reading() -> None:
    watch = BodyWatch()
    owner = _Owner(asyncio.get_running_loop())
    body = BodyStream(owner, 1024)
    assert watch.stalled_for(body, reading=True, now=0.0) == 0.0  # a new body
    assert watch.stalled_for(body, reading=True, now=5.0) == 5.0
    body.feed_data(b"x")
    assert watch.stalled_for(body, reading=True, now=6.0) == 0.0  # it grew
    assert watch.stalled_for(body, reading=False, now=20.0) == 0.0  # paused: not its fault
    assert watch.stalled_for(body, reading=True, now=21.0) == 1.0
    other = BodyStream(owner, 1024)
    assert watch.stalled_for(other, reading=True, now=30.0) == 0.0  # the next request's
    assert watch.stalled_for(None, reading=True, now=31.0) == 0.0
    watch.forget()
    assert watch.stalled_for(other, reading=True, now=40.0) == 0.0
