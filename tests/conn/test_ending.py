"""conn.ending.Ending in memory: the keep-alive verdict, refusals answered in turn,
the lingering close and what a timed-out state does, against a recording port (no
socket, no parser)."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from lowserve.api.exceptions import RequestPayloadError
from lowserve.api.streams import BodyStream
from lowserve.conn.ending import Ending
from lowserve.conn.state import ConnState, PersistEnd
from lowserve.wire.errors import WireError


class Transport:
    """What the ending does to a transport."""

    def __init__(self, eof_fails: bool = False) -> None:
        self.calls: list[str] = []
        self.closing = False
        self.eof_fails = eof_fails

    def is_closing(self) -> bool:
        return self.closing

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self.eof_fails:
            raise OSError("not connected")
        self.calls.append("eof")

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True


class Port:
    """An EndingPort that records the events it is told and keeps the state they ask for."""

    def __init__(self, state: ConnState = ConnState.IDLE, owes: bool = False, **kw: Any) -> None:
        self.transport: Any = Transport(**kw)
        self.state = state
        self.peer: str | None = "192.0.2.1"
        self.server_header: str | None = "test"
        self.owes = owes
        self.queued: list[WireError] = []
        self.events: list[str] = []

    def queue_refusal(self, err: WireError) -> bool:
        if self.owes:
            self.queued.append(err)
        return self.owes

    def update_reading(self, body_full: bool | None = None) -> None:
        self.events.append("update_reading")

    def lingering(self) -> None:
        self.events.append("lingering")
        self.state = ConnState.DISCARD

    def closing(self) -> None:
        self.events.append("closing")
        self.state = ConnState.CLOSING


class Output:
    def __init__(self, port: Port) -> None:
        self.port = port
        self.sent: list[bytes] = []
        self.flushes = 0

    def send(self, data: bytes) -> bool:
        if self.port.transport.is_closing():
            return False
        self.sent.append(data)
        return True

    def flush_out(self) -> None:
        self.flushes += 1


class Reader:
    def __init__(self, body: BodyStream | None = None) -> None:
        self.body = body
        self.abandoned = 0

    def abandon_head(self) -> None:
        self.abandoned += 1

    def take_body(self) -> BodyStream | None:
        body, self.body = self.body, None
        return body


class Server:
    def __init__(self) -> None:
        self.logger = logging.getLogger("lowserve.test_ending")
        self.notes: list[str] = []

    def note_refusal(self, kind: str, message: str) -> None:
        self.notes.append(kind)


def _ending(port: Port, reader: Reader | None = None) -> tuple[Ending, Output, Server]:
    output, server = Output(port), Server()
    ending = Ending(port, cast(Any, server), cast(Any, reader or Reader()), cast(Any, output))
    return ending, output, server


def test_the_verdict_is_set_once_and_only_a_reason_that_stops_reading_overrides_draining() -> None:
    ending, _, _ = _ending(Port())
    assert ending.persist_end is None
    ending.end(PersistEnd.DRAINING)
    assert ending.persist_end is PersistEnd.DRAINING
    ending.end(PersistEnd.CUT_SHORT)
    assert ending.persist_end is PersistEnd.CUT_SHORT
    ending.end(PersistEnd.DRAINING)
    ending.end(PersistEnd.REFUSED)
    assert ending.persist_end is PersistEnd.CUT_SHORT


def test_a_refusal_with_nothing_owed_is_answered_now_and_the_close_lingers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = Port()
    reader = Reader()
    ending, output, _ = _ending(port, reader)
    with caplog.at_level(logging.DEBUG, logger="lowserve.test_ending"):
        ending.refuse(WireError(431, "header line too long"))
    [reply] = output.sent
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert b"\r\nConnection: close\r\n" in reply
    assert reply.endswith(b"(header line too long)")
    assert ending.error is not None and ending.error.status == 431
    assert ending.persist_end is PersistEnd.REFUSED
    assert reader.abandoned == 1
    assert port.events == ["lingering"]  # FIN sent, input dropped: no RST over the answer
    assert port.transport.calls == ["eof"]
    assert [(r.levelno, r.exc_info) for r in caplog.records] == [(logging.DEBUG, None)]
    ending.refuse(WireError(400, "a second fault"))  # nothing is parsed after a refusal
    assert len(output.sent) == 1 and ending.error.status == 431


def test_a_refusal_behind_answers_owed_is_queued_in_turn() -> None:
    port = Port(ConnState.BUSY, owes=True)
    ending, output, _ = _ending(port)
    err = WireError(400, "bad chunk")
    ending.refuse(err)
    assert port.queued == [err] and output.sent == []
    assert ending.error is err and ending.persist_end is PersistEnd.REFUSED
    ending.reply(err)  # its turn comes (the connection's _next)
    assert len(output.sent) == 1 and port.events == ["lingering"]


def test_a_fault_in_a_body_fails_its_reads_and_writes_nothing() -> None:
    body = BodyStream(cast(Any, None), 2**16)
    port = Port(ConnState.BUSY)
    ending, output, _ = _ending(port, Reader(body))
    ending.refuse(WireError(413, "body too large"))
    exc = body.exception()
    assert isinstance(exc, RequestPayloadError) and exc.status == 413
    assert output.sent == [] and port.events == ["update_reading"]
    assert ending.persist_end is PersistEnd.REFUSED


def test_a_plain_close_closes_and_a_close_with_a_body_arriving_lingers() -> None:
    port = Port()
    ending, output, _ = _ending(port)
    ending.close()
    assert port.events == ["closing"] and port.transport.calls == ["close"]
    assert output.flushes == 1 and ending.error is None
    ending.close()  # closing already: the transport is not closed twice
    assert port.transport.calls == ["close"]

    body = BodyStream(cast(Any, None), 2**16)
    port = Port(ConnState.LINGER)
    ending, _, _ = _ending(port, Reader(body))
    ending.close()
    assert port.events == ["lingering"] and port.transport.calls == ["eof"]
    assert ending.error is not None and ending.persist_end is PersistEnd.REFUSED
    ending.close()  # DISCARD already
    assert port.events == ["lingering"]


def test_a_lingering_close_to_a_peer_already_gone_aborts() -> None:
    port = Port(eof_fails=True)
    ending, _, _ = _ending(port)
    ending.close_lingering()
    assert port.transport.calls == ["abort"] and port.events == []


@pytest.mark.parametrize(
    ("state", "events", "calls", "status"),
    [
        (ConnState.HEAD, ["lingering"], ["eof"], 408),
        (ConnState.IDLE, ["closing"], ["close"], None),
        (ConnState.LINGER, ["closing"], ["close"], None),
        (ConnState.DISCARD, [], ["abort"], None),
    ],
)
def test_what_a_timed_out_state_does(
    state: ConnState, events: list[str], calls: list[str], status: int | None
) -> None:
    port = Port(state)
    ending, output, server = _ending(port)
    ending.timed_out(state)
    assert port.events == events and port.transport.calls == calls
    if status is None:
        assert output.sent == [] and server.notes == []
    else:
        [reply] = output.sent
        assert reply.startswith(f"HTTP/1.1 {status} ".encode())
        assert server.notes == ["head-timeout"]


def test_over_capacity_is_answered_503_then_closed() -> None:
    port = Port(ConnState.REFUSING)
    ending, output, _ = _ending(port)
    ending.over_capacity()
    assert ending.persist_end is PersistEnd.REFUSED
    ending.timed_out(ConnState.REFUSING)  # its request never came: 503 all the same
    [reply] = output.sent
    assert reply.startswith(b"HTTP/1.1 503 ") and b"too many connections" in reply
    assert port.events == ["closing"] and port.transport.calls == ["close"]
