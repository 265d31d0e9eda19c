"""lowserve.conn.flow in memory: writing's pause and drain, the two stall clocks, and the
two rate accounts (min_body_rate, min_send_rate)."""

from __future__ import annotations

import asyncio

import pytest

from lowserve.api.streams import BodyStream
from lowserve.conn.flow import BodyWatch, FloodWatch, WriteFlow


async def test_writers_wait_for_resume_and_share_one_future() -> None:
    loop = asyncio.get_running_loop()
    flow = WriteFlow()
    flow.pause(buffered=70_000, now=0.0)
    assert flow.paused
    writers = [asyncio.ensure_future(flow.wait(loop)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers)
    flow.resume(0, now=1.0)
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
    flow.resume(0, now=1.0)
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


def _stall(flow: WriteFlow, buffered: int, now: float) -> float:
    flow.sample(buffered, now)
    return flow.stalled_for(now)


def test_send_stall_counts_from_the_last_time_the_buffer_shrank() -> None:
    flow = WriteFlow()
    flow.pause(buffered=100, now=10.0)
    assert _stall(flow, 100, now=12.0) == 2.0
    assert _stall(flow, 150, now=13.0) == 3.0  # growing is no progress
    assert _stall(flow, 90, now=14.0) == 0.0  # the peer took 10 bytes
    assert _stall(flow, 90, now=20.0) == 6.0
    flow.pause(buffered=500, now=30.0)  # a new pause starts a new watch
    assert _stall(flow, 500, now=31.0) == 1.0


def test_send_rate_allows_the_grace_plus_a_second_per_rate_bytes_taken() -> None:
    flow = WriteFlow()
    flow.pause(buffered=100_000, now=10.0)
    assert not flow.too_slow(500, 20.0, now=10.0)  # no sample yet: no account
    flow.sample(100_000, now=11.0)  # the account's clock starts at its first sample
    flow.sample(99_000, now=31.0)  # 1,000 bytes taken: 20 s grace + 2 s
    assert not flow.too_slow(500, 20.0, now=31.0)
    assert not flow.too_slow(500, 20.0, now=33.0)
    assert flow.too_slow(500, 20.0, now=33.5)
    flow.sample(98_000, now=33.5)  # 1,000 more: 4 s now
    assert not flow.too_slow(500, 20.0, now=35.0)
    assert flow.too_slow(500, 20.0, now=35.5)


def test_send_rate_counts_what_was_taken_before_the_first_sample_and_before_resuming() -> None:
    flow = WriteFlow()
    flow.pause(buffered=70_000, now=1.0)
    flow.sample(60_000, now=2.0)  # 10,000 taken before the account's clock started
    flow.resume(10_000, now=2.0)  # 50,000 more, down to the low-water mark
    flow.pause(buffered=75_000, now=2.0)  # refilled within the same sweep: same account
    flow.sample(75_000, now=3.0)
    assert not flow.too_slow(1000, 0.0, now=62.0)  # 60,000 bytes in 60 s
    assert flow.too_slow(1000, 0.0, now=62.5)


def test_a_sweep_with_writing_resumed_ends_the_send_rate_account() -> None:
    flow = WriteFlow()
    flow.pause(buffered=70_000, now=1.0)
    flow.sample(70_000, now=2.0)
    flow.resume(16_000, now=2.0)
    flow.pause(buffered=70_000, now=3.0)  # a sweep passed while resumed: afresh
    assert not flow.too_slow(1000, 0.0, now=100.0)  # no sample since: no clock
    flow.sample(70_000, now=100.0)
    assert not flow.too_slow(1000, 0.5, now=100.5)
    assert flow.too_slow(1000, 0.5, now=101.0)


def test_a_slow_reader_dodging_send_timeout_is_caught_by_the_rate() -> None:
    flow = WriteFlow()
    flow.pause(buffered=70_000, now=0.0)
    buffered, caught = 70_000, None
    for second in range(1, 200):
        buffered -= 10  # 10 B/s: the stall clock never reaches send_timeout
        flow.sample(buffered, now=float(second))
        assert flow.stalled_for(float(second)) == 0.0
        if flow.too_slow(500, 20.0, now=float(second)):
            caught = second
            break
    assert caught == 22  # 20 s of grace, then 10 * (t - 1) < 500 * (t - 21)


class _Owner:
    """A connection as a body stream sees it (lowserve.api.connection.BodyOwner)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def pause_for_body(self, paused: bool) -> None:
        pass


def _body_stall(watch: BodyWatch, body: BodyStream | None, reading: bool, now: float) -> float:
    watch.sample(body, reading, now)
    return watch.stalled_for(now)


async def test_body_stall_counts_only_while_reading() -> None:
    watch = BodyWatch()
    owner = _Owner(asyncio.get_running_loop())
    body = BodyStream(owner, 1024)
    assert _body_stall(watch, body, reading=True, now=0.0) == 0.0  # a new body
    assert _body_stall(watch, body, reading=True, now=5.0) == 5.0
    body.feed_data(b"x")
    assert _body_stall(watch, body, reading=True, now=6.0) == 0.0  # it grew
    assert _body_stall(watch, body, reading=False, now=20.0) == 0.0  # paused: not its fault
    assert _body_stall(watch, body, reading=True, now=21.0) == 1.0
    other = BodyStream(owner, 1024)
    assert _body_stall(watch, other, reading=True, now=30.0) == 0.0  # the next request's
    assert _body_stall(watch, None, reading=True, now=31.0) == 0.0
    watch.forget()
    assert _body_stall(watch, other, reading=True, now=40.0) == 0.0


async def test_body_rate_allows_the_grace_plus_a_second_per_rate_bytes() -> None:
    watch = BodyWatch()
    body = BodyStream(_Owner(asyncio.get_running_loop()), 2**20)
    watch.sample(body, reading=True, now=100.0)
    for second in range(1, 31):  # one byte a second: never a gap
        body.feed_data(b"x")
        watch.sample(body, reading=True, now=100.0 + second)
        assert watch.stalled_for(100.0 + second) == 0.0
        # 20 s of grace; then 1 byte a second is far below 500 B/s
        assert watch.too_slow(500, 20.0) is (second > 20)
    body.feed_data(b"x" * 10_000)  # a burst: 10,030 bytes buy 20 s more
    assert not watch.too_slow(500, 20.0)


async def test_body_rate_counts_only_time_spent_reading() -> None:
    watch = BodyWatch()
    body = BodyStream(_Owner(asyncio.get_running_loop()), 2**20)
    body.feed_data(b"x" * 2000)
    watch.sample(body, reading=True, now=0.0)
    watch.sample(body, reading=True, now=2.0)  # 2 s read from
    watch.sample(body, reading=False, now=3.0)  # the handler holds it back: not counted
    watch.sample(body, reading=False, now=500.0)
    watch.sample(body, reading=True, now=501.0)  # resumed between samples: not counted
    assert not watch.too_slow(1000, 0.5)  # 2 s so far: 2,000 bytes allow 0.5 + 2 s
    watch.sample(body, reading=True, now=501.5)
    assert not watch.too_slow(1000, 0.5)
    watch.sample(body, reading=True, now=501.6)
    assert watch.too_slow(1000, 0.5)
    other = BodyStream(_Owner(asyncio.get_running_loop()), 2**20)
    watch.sample(other, reading=True, now=502.0)  # the next body: a new account
    assert not watch.too_slow(1000, 0.5)
    watch.forget()
    assert not watch.too_slow(1, 0.0)


async def test_lost_after_a_cancelled_writer_logs_no_unretrieved_exception() -> None:
    """A stop cancels a handler waiting in drain(); the connection is then lost. The
    shielded future it left has nobody to read its error: asyncio must not log
    'Future exception was never retrieved' (an ERROR for no bug)."""
    import gc

    loop = asyncio.get_running_loop()
    calls: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: calls.append(context))
    try:
        flow = WriteFlow()
        flow.pause(100_000, 0.0)
        cancelled = asyncio.ensure_future(flow.wait(loop))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        flow.lost(ConnectionResetError("gone"))
        del cancelled, flow
        gc.collect()
        await asyncio.sleep(0)
        assert calls == []
    finally:
        loop.set_exception_handler(None)


async def test_lost_fails_the_writers_still_waiting() -> None:
    loop = asyncio.get_running_loop()
    flow = WriteFlow()
    flow.pause(100_000, 0.0)
    waiting = [asyncio.ensure_future(flow.wait(loop)) for _ in range(2)]
    await asyncio.sleep(0)
    flow.lost(ConnectionResetError("gone"))
    for writer in waiting:
        with pytest.raises(ConnectionResetError):
            await writer


def test_a_flood_is_a_count_past_its_bound_within_one_window() -> None:
    watch = FloodWatch(now=100.0)
    assert not any(watch.reset_floods(100.0 + i / 10, bound=3) for i in range(3))
    assert watch.reset_floods(100.5, bound=3)
    # resets and control frames are counted apart
    assert not watch.control_floods(100.5, bound=1)
    assert watch.control_floods(100.6, bound=1)


def test_a_new_flood_window_starts_both_counts_again() -> None:
    watch = FloodWatch(now=0.0)
    for _ in range(3):
        watch.reset_floods(1.0, bound=10)
        watch.control_floods(1.0, bound=10)
    later = FloodWatch.WINDOW + 0.1
    # three of each were counted in the first window: a bound of 1 holds only after the roll
    assert not watch.reset_floods(later, bound=1)
    assert not watch.control_floods(later, bound=1)
