"""HTTP/2 stops, restarts and recycles lose nothing: the graceful GOAWAY, under load.

Clients that never retry keep HTTP/2 connections busy, two streams in flight each
(half on a 50 ms handler), while the command is stopped (SIGTERM), restarted
(SIGHUP) or recycles its workers (--max-requests). A request counts as failed when
its stream was reset or its connection ended before its whole response came. A
client that has read a GOAWAY opens no stream on that connection any more: it
finishes those in flight and connects again, as browsers and h2load do; after
SIGTERM that new connection is refused, which is counted apart.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from commandline import APP, StderrLines, free_port, lowserve, wait_serving
from load import Load, Tally

from conftest import h2_client_machine

pytestmark = pytest.mark.timeout(120)


def _h2_client(port: int | str, path: str, tally: Tally, stop: threading.Event) -> None:
    """Two streams in flight at a time; after a GOAWAY, none opened on that connection."""
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            with tally.lock:
                tally.refused += 1
            return
        except OSError as exc:
            with tally.lock:
                tally.failed.append(f"connect: {exc!r}")
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.state_machine = h2_client_machine()  # reads on after a GOAWAY, as nghttp2 does
        conn.initiate_connection()
        inflight: set[int] = set()
        goaway = False
        with sock:
            try:
                while True:
                    while not goaway and not stop.is_set() and len(inflight) < 2:
                        stream = conn.get_next_available_stream_id()
                        conn.send_headers(
                            stream,
                            [
                                (":method", "GET"),
                                (":path", path),
                                (":scheme", "http"),
                                (":authority", "x"),
                            ],
                            end_stream=True,
                        )
                        inflight.add(stream)
                    sock.sendall(conn.data_to_send())
                    if not inflight:
                        break
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError(f"EOF with streams {sorted(inflight)} in flight")
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.StreamEnded):
                            inflight.discard(event.stream_id)
                            with tally.lock:
                                tally.ok += 1
                        elif isinstance(event, h2.events.StreamReset):
                            raise ConnectionError(
                                f"stream {event.stream_id} reset: {event.error_code!r}"
                            )
                        elif isinstance(event, h2.events.ConnectionTerminated):
                            goaway = True
                            with tally.lock:
                                tally.closes += 1
                            late = {s for s in inflight if s > (event.last_stream_id or 0)}
                            if late:
                                raise ConnectionError(f"streams {sorted(late)} past the GOAWAY")
                        elif isinstance(event, h2.events.DataReceived):
                            conn.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id
                            )
            except Exception as exc:  # any error is a failed request, never a lost thread
                with tally.lock:
                    tally.failed.append(f"{path}: {exc!r}")
                return


def h2_load(port: int, clients: int = 20) -> Load:
    """20 HTTP/2 clients, half on a 50 ms handler."""
    return Load(port, clients, client=_h2_client)


def _start(app: Path, port: int, *args: str) -> subprocess.Popen[str]:
    proc = lowserve("myapp:handler", "--port", str(port), "--no-access-log", *args, cwd=app)
    wait_serving(port, proc)
    return proc


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


def test_h2_sigterm_under_load_loses_nothing(app: Path) -> None:
    port = free_port()
    proc = _start(app, port)
    try:
        with h2_load(port) as load:
            load.wait_for(300)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            load.stop.set()
        tally = load.tally
        print(
            f"h2 SIGTERM: {tally.ok} ok, {len(tally.failed)} failed, {tally.refused} refused after"
        )
        assert tally.failed == []
        assert tally.closes > 0  # the GOAWAYs were read
        assert code == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "request(s) answered while draining, 0 handler(s) cancelled" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()


def test_h2_two_sighups_under_load_lose_nothing(app: Path) -> None:
    port = free_port()
    proc = _start(app, port, "--workers", "2")
    try:
        with h2_load(port) as load:
            load.wait_for(300)
            for _ in range(2):
                proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 30
                assert proc.stderr is not None
                while time.monotonic() < deadline:
                    if "restart complete" in proc.stderr.readline():
                        break
                load.wait_for(300)
        tally = load.tally
        print(f"h2 2 x SIGHUP: {tally.ok} ok, {len(tally.failed)} failed, {tally.refused} refused")
        assert tally.failed == [] and tally.refused == 0
        assert tally.closes > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_h2_ten_recycles_under_load_lose_nothing(app: Path) -> None:
    port = free_port()
    proc = _start(app, port, "--max-requests", "200", "--log-level", "info")
    stderr = StderrLines(proc)
    lines = stderr.lines

    def recycles() -> list[str]:
        return [line for line in list(lines) if "served" in line and "recycling" in line]

    try:
        with h2_load(port) as load:
            deadline = time.monotonic() + 60
            while len(recycles()) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            load.wait_for(50)
        tally = load.tally
        print(f"h2 recycles: {len(recycles())}, {tally.ok} ok, {len(tally.failed)} failed")
        assert len(recycles()) >= 10
        assert tally.failed == [] and tally.refused == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        stderr.join()
    assert code == 0
    text = "".join(lines)
    assert "died" not in text and "WARNING" not in text
