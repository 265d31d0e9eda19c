"""conn.state.Deadlines in memory: when each waiting state times out, and the drain."""

from __future__ import annotations

from lowserve.conn.state import ConnState, Deadlines


def test_each_waiting_state_has_its_timeout_and_the_others_none() -> None:
    d = Deadlines(keepalive=75.0, head=10.0, linger=5.0)
    assert d.deadline(ConnState.IDLE, 100.0) == 175.0
    assert d.deadline(ConnState.HEAD, 100.0) == 110.0
    assert d.deadline(ConnState.LINGER, 100.0) == 105.0
    assert d.deadline(ConnState.DISCARD, 100.0) == 102.0
    assert d.deadline(ConnState.REFUSING, 100.0) == 100.2
    for state in (ConnState.BUSY, ConnState.HELD, ConnState.UPGRADED, ConnState.CLOSING):
        assert d.deadline(state, 100.0) == 0.0
    assert Deadlines(keepalive=0.0, head=0.0, linger=0.0).deadline(ConnState.IDLE, 1.0) == 0.0


def test_the_drain_cuts_idle_connections_and_heads_already_arriving() -> None:
    shared = Deadlines(keepalive=75.0, head=10.0, linger=5.0)
    d = shared.draining(now=200.0, grace=3.0)
    # the shared deadlines are not changed: other connections do not drain with this one
    assert shared.deadline(ConnState.IDLE, 150.0) == 225.0
    # idle since before the drain: the grace counts from the drain's start
    assert d.deadline(ConnState.IDLE, 150.0) == 203.0
    # idle again later (after an answer): the grace again, from then
    assert d.deadline(ConnState.IDLE, 250.0) == 253.0
    # a head arriving as the drain began gets the grace at most; a later one its own timeout
    assert d.deadline(ConnState.HEAD, 199.0) == 203.0
    assert d.deadline(ConnState.HEAD, 201.0) == 211.0
    assert d.draining(now=300.0, grace=1.0) is d  # the drain begins once
    assert d.deadline(ConnState.IDLE, 150.0) == 203.0


def test_a_drain_without_keepalive_or_head_timeouts_still_ends() -> None:
    d = Deadlines(keepalive=0.0, head=0.0, linger=5.0).draining(now=10.0, grace=2.0)
    assert d.deadline(ConnState.IDLE, 5.0) == 12.0
    assert d.deadline(ConnState.HEAD, 5.0) == 12.0
    assert d.deadline(ConnState.HEAD, 11.0) == 0.0
