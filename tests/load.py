"""A client load for drain tests: keep-alive clients that never retry, counting
every request sent without a whole response as failed (see tests/e2e/test_drain.py),
over HTTP/1.1 or HTTP/2 (:func:`load`).
"""

from __future__ import annotations

import functools
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from conftest import h2_client_machine


@dataclass
class Tally:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    refused: int = 0
    closes: int = 0
    #: For --metrics' checks (HTTP/1.1 clients): bytes of requests sent and of whole
    #: responses read, and responses read on a connection that had one already.
    sent: int = 0
    received: int = 0
    reused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def read_response(sock: socket.socket, buf: bytes) -> tuple[bytes, bool, bytes, bytes]:
    """One whole response (Content-Length framed): head, whether it closes, body, the rest."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} bytes of a head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF inside a body")
        rest += chunk
    closes = re.search(rb"(?i)\r\nconnection: *close", head) is not None
    return head, closes, rest[:length], rest[length:]


def connect(where: int | str) -> socket.socket:
    """A connection to 127.0.0.1:*where*, or to the UNIX socket file *where*."""
    if isinstance(where, int):
        return socket.create_connection(("127.0.0.1", where), timeout=10)
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    try:
        sock.connect(where)
    except OSError:
        sock.close()
        raise
    return sock


def _client(
    where: int | str,
    path: str,
    tally: Tally,
    stop: threading.Event,
    close_each: bool = False,
    no_new_connections: threading.Event | None = None,
) -> None:
    """Requests one after another, never retrying one; reconnects after a close,
    unless *no_new_connections* is set (its connection's requests go on until then)."""
    close = "Connection: close\r\n" if close_each else ""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n".encode()
    while not stop.is_set() and not (no_new_connections and no_new_connections.is_set()):
        try:
            sock = connect(where)
        except (ConnectionRefusedError, FileNotFoundError):  # a removed socket file too
            with tally.lock:
                tally.refused += 1
            return  # stopped: nobody listens any more
        except OSError as exc:
            with tally.lock:
                tally.failed.append(f"connect: {exc!r}")
            return
        with sock:
            buf, answers = b"", 0
            while not stop.is_set():
                try:
                    sock.sendall(request)
                    head, closes, body, buf = read_response(sock, buf)
                except Exception as exc:  # any error is a failed request, never a lost thread
                    with tally.lock:
                        tally.failed.append(f"{path}: {exc!r}")
                    return
                with tally.lock:
                    if head.startswith(b"HTTP/1.1 200 "):
                        tally.ok += 1
                    else:
                        tally.failed.append(head.split(b"\r\n")[0].decode())
                    tally.closes += closes
                    tally.sent += len(request)
                    tally.received += len(head) + 4 + len(body)
                    tally.reused += answers > 0
                answers += 1
                if closes:
                    break


def h2_client(port: int | str, path: str, tally: Tally, stop: threading.Event) -> None:
    """HTTP/2, two streams in flight at a time; after a GOAWAY none is opened on that
    connection (those in flight finish), and the client connects again, as browsers
    and h2load do. A reset stream, or a connection that ends with streams in flight,
    is a failed request."""
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
                        fields = [(":method", "GET"), (":path", path), (":scheme", "http")]
                        conn.send_headers(stream, [*fields, (":authority", "x")], end_stream=True)
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


#: A client thread's body: (address, path, tally, stop event).
Client = Callable[[int | str, str, Tally, threading.Event], None]


class Load:
    """40 keep-alive clients, half on a 50 ms handler (or, with *close_each*, clients
    that connect for every request: they keep the listener's accept queue busy)."""

    def __init__(
        self,
        where: int | str,
        clients: int = 40,
        close_each: bool = False,
        client: Client | None = None,
        no_new_connections: threading.Event | None = None,
    ) -> None:
        """*client* replaces the HTTP/1.1 client (:func:`h2_client`, say): it is called
        with the address, the path, the tally and the stop event. Once
        *no_new_connections* is set, HTTP/1.1 clients open no new connection (a
        load balancer's endpoint removed): each stops when its connection closes."""
        self.tally = Tally()
        self.stop = threading.Event()
        run: Client = client or functools.partial(
            _client, close_each=close_each, no_new_connections=no_new_connections
        )
        self.threads = [
            threading.Thread(
                target=run,
                args=(where, "/slow?t=0.05" if i % 2 else "/pid", self.tally, self.stop),
                daemon=True,
            )
            for i in range(clients)
        ]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"

    def wait_for(self, requests: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        start = self.tally.ok
        while self.tally.ok - start < requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.tally.ok - start >= requests, (self.tally.ok, self.tally.failed[:3])


def load(protocol: str, where: int) -> Load:
    """The drain tests' load: 40 HTTP/1.1 clients, or 20 HTTP/2 ones (*protocol*
    ``h2``), half of them on a 50 ms handler."""
    if protocol == "h2":
        return Load(where, 20, client=h2_client)
    return Load(where)


def sigterm_under_per_request_load(
    where: int | str, proc: subprocess.Popen[str], totals: Tally
) -> None:
    """16 clients connect for every request to *where* (*proc* serving it); SIGTERM
    once 300 are answered; *proc* must exit 0. The counts are added to *totals*."""
    with Load(where, clients=16, close_each=True) as load:
        load.wait_for(300)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    totals.ok += load.tally.ok
    totals.failed += load.tally.failed
    totals.refused += load.tally.refused
