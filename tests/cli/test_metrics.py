"""--metrics: the supervisor's admin listener (/metrics, /healthz, /readyz), run as the
real command, its scrapes read by prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import signal
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from commandline import StderrLines, free_port, get, lowserve, run_once, wait_serving
from lowserve.cli.metrics import Fleet
from lowserve.conn.metrics import BUCKETS
from lowserve.conn.server import Server
from lowserve.web import BaseRequest, Response
from scrape import parse, scrape, scrape_text, settled, total, value, wait_until

pytestmark = pytest.mark.timeout(60)

APP = textwrap.dedent(
    """
    import asyncio, os, sys
    from lowserve import web
    from prometheus_client import Counter

    ORDERS = Counter("myapp_orders", "Orders taken", ["kind"])

    async def handler(request):
        if request.path == "/slow":
            print("slow request started", file=sys.stderr, flush=True)
            await asyncio.sleep(float(request.query.get("t", "1")))
        if request.path == "/held":
            # answered once the test creates the file named by ?release= (an event
            # across processes, not a clock the test has to beat)
            print("held request started", file=sys.stderr, flush=True)
            while not os.path.exists(request.query["release"]):
                await asyncio.sleep(0.01)
        if request.path == "/order":
            ORDERS.labels("book").inc()
        if request.path == "/boom":
            raise RuntimeError("boom")
        if request.path == "/missing":
            raise web.HTTPNotFound()
        return web.Response(text=str(os.getpid()))
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


def test_metrics_count_what_was_answered_across_workers(app: Path) -> None:
    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--workers", "2", "--metrics",
        f"127.0.0.1:{admin}", "--no-access-log", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        assert scrape_text(admin, "/healthz")[0] == 200
        assert scrape_text(admin, "/readyz")[0] == 200
        base = settled(admin)  # wait_serving's requests
        before = scrape(admin)
        for _ in range(20):
            assert get(port, "/order")[0] == 200
        assert get(port, "/missing")[0] == 404
        assert get(port, "/boom")[0] == 500
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            )
            while s.recv(65536):
                pass

        # malformed requests are refused, and counted by status
        for raw in (
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
            b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(raw)
                assert s.recv(100).split(b" ")[1] in (b"400", b"414")

        def counted() -> bool:
            return total(scrape(admin), "lowserve_requests_total") >= base + 23

        wait_until(counted, what="23 requests counted")
        after = scrape(admin)
        assert total(after, "lowserve_requests_total") == base + 23
        assert (
            value(after, "lowserve_requests_total", method="GET", status="2xx")
            == value(before, "lowserve_requests_total", method="GET", status="2xx") + 20
        )
        assert value(after, "lowserve_requests_total", method="GET", status="4xx") == 1
        assert value(after, "lowserve_requests_total", method="GET", status="5xx") == 1
        assert value(after, "lowserve_requests_total", method="POST", status="2xx") == 1
        # the histogram counts every request, in cumulative buckets ending at +Inf
        count = value(after, "lowserve_request_duration_seconds_count")
        assert count == base + 23
        assert value(after, "lowserve_request_duration_seconds_bucket", le="+Inf") == count
        bounds = [
            value(after, "lowserve_request_duration_seconds_bucket", le=str(b)) for b in BUCKETS
        ]
        assert bounds == sorted(bounds) and bounds[-1] <= count
        assert value(after, "lowserve_connections_accepted_total") >= base + 23
        # per-worker gauges carry the worker's number; the user's counter is summed
        assert {dict(lab)["worker"] for (n, lab) in after if n == "lowserve_worker_rss_bytes"} == {
            "1",
            "2",
        }
        assert all(v > 1e6 for (n, _), v in after.items() if n == "lowserve_worker_rss_bytes")
        assert value(after, "myapp_orders_total", kind="book") == 20
        assert value(after, "lowserve_refusals_total", reason="400") == 1
        assert value(after, "lowserve_refusals_total", reason="414") == 1
        assert value(after, "lowserve_workers", state="serving") == 2
        assert value(after, "lowserve_worker_starts_total") == 2
        # the admin listener answers nothing else
        assert scrape_text(admin, "/")[0] == 404
        with socket.create_connection(("127.0.0.1", admin), timeout=5) as s:
            s.sendall(
                b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            assert s.recv(100).startswith(b"HTTP/1.1 405 ")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()


def test_readyz_fails_from_the_drain_start_while_healthz_holds(app: Path, tmp_path: Path) -> None:
    port, sock_path = free_port(), str(tmp_path / "admin.sock")
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--metrics", f"unix:{sock_path}",
        "--no-access-log", "--log-level", "info", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        assert scrape_text(sock_path, "/readyz")[:1] == (200,)
        answer: list[int] = []
        release = tmp_path / "release"
        held = threading.Thread(
            target=lambda: answer.append(get(port, f"/held?release={release}")[0])
        )
        held.start()
        stderr.wait_for("held request started", 10)
        proc.send_signal(signal.SIGTERM)
        stderr.wait_for("stopping (SIGTERM)", 10)
        # the drain runs, held open by the request: not ready (endpoints go), but
        # alive (no restart)
        assert scrape_text(sock_path, "/readyz")[0] == 503
        assert scrape_text(sock_path, "/healthz")[0] == 200
        release.touch()
        held.join(10)
        assert answer == [200]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr.join()
    assert not Path(sock_path).exists()


def test_metrics_address_in_use_is_one_line_and_exit_3(app: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = taken.getsockname()[1]
        result = run_once(
            "myapp:handler", "--port", str(free_port()), "--metrics", f"127.0.0.1:{admin}", cwd=app
        )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"Error: --metrics: cannot listen on 127.0.0.1:{admin}: address already in use"
    ]


def test_fleet_counters_stay_monotonic_as_workers_come_and_go() -> None:
    fleet = Fleet()
    snap = {"requests": {"GET": [0, 5, 0, 1, 0]}, "buckets": [5, 1] + [0] * (len(BUCKETS) - 1),
            "duration_sum": 0.5, "connections_open": 3, "refusals": {"limit": 2}}  # fmt: skip
    fleet.started(10, 1)
    fleet.receive(10, __import__("json").dumps(snap).encode())
    fleet.receive(10, b"not json")  # ignored
    before = parse(fleet.exposition().decode())
    fleet.exited(10, "recycle-requests")
    fleet.started(11, 1)
    after = parse(fleet.exposition().decode())
    for key in ("lowserve_requests_total", "lowserve_request_duration_seconds_count",
                "lowserve_refusals_total"):  # fmt: skip
        assert total(after, key) == total(before, key) > 0
    assert value(after, "lowserve_worker_exits_total", cause="recycle-requests") == 1
    # a gauge belongs to live workers only
    assert total(before, "lowserve_connections_open") == 3
    assert total(after, "lowserve_connections_open") == 0


async def test_the_sweeper_measures_event_loop_lag() -> None:
    async def handler(request: BaseRequest) -> Response:
        return Response(text="ok")

    server = Server(handler, keepalive_timeout=0.2)  # a sweep every 50 ms
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"ok"), 5)
        server.take_loop_lag()
        time.sleep(0.3)  # the loop is blocked: the next sweep is ~0.25 s late
        await asyncio.sleep(0.1)
        assert server.take_loop_lag() >= 0.2
        assert server.take_loop_lag() < 0.2  # read once: a new interval begins
        writer.close()
    finally:
        srv.close()
        await srv.wait_closed()


def test_json_access_log_lines_are_bare_objects_and_health_checks_left_out(app: Path) -> None:
    import json

    port = free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--workers", "2", "--access-log-format", "json",
        "--access-log-exclude", "/healthz,/ready*", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        for path in ("/healthz", "/readyz", "/order", "/missing"):
            get(port, path)
        stderr.wait_for('"path":"/missing"', 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()
    entries = [json.loads(line) for line in stderr.lines if line.startswith("{")]
    paths = [e["path"] for e in entries]
    assert "/order" in paths and "/missing" in paths
    assert not any(p.startswith(("/healthz", "/ready")) for p in paths)
    assert all(e["worker"] in (1, 2) and e["pid"] != proc.pid for e in entries)
    assert {e["status"] for e in entries if e["path"] == "/missing"} == {404}
    # the other lines keep their timestamped text form
    assert any("INFO [main] lowserve.supervisor: serving on" in line for line in stderr.lines)


def test_process_titles_name_the_supervisor_and_each_numbered_worker(app: Path) -> None:
    pytest.importorskip("setproctitle")
    from commandline import wait_for_workers

    port = free_port()
    proc = lowserve("myapp:handler", "--port", str(port), "--workers", "2", cwd=app)
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        pids = wait_for_workers(proc.pid, lambda pids: len(pids) == 2)

        def title(pid: int) -> str:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()

        assert title(proc.pid) == "lowserve supervisor [myapp:handler]"
        assert sorted(title(pid) for pid in pids) == [
            "lowserve worker 1 [myapp:handler]",
            "lowserve worker 2 [myapp:handler]",
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()


def test_every_exported_metric_is_documented_and_every_documented_one_exported() -> None:
    fleet = Fleet()
    fleet.started(10, 1)
    fleet.receive(
        10, b'{"in_flight": 0, "connections_open": 0, "websockets_open": 0, "loop_lag": 0}'
    )
    exported = {f.name for f in text_string_to_metric_families(fleet.exposition().decode())}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    table = set()
    for line in doc.splitlines():
        if line.startswith("| `lowserve_"):
            name = line.split("`")[1]
            table.add(name.removesuffix("_total"))
    assert exported == table


def test_a_killed_worker_counts_as_signal_and_its_counts_are_kept(app: Path) -> None:
    import os

    from commandline import wait_for_workers

    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--metrics", f"127.0.0.1:{admin}",
        "--no-access-log", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        for _ in range(10):
            get(port, "/order")
        base = settled(admin)
        [victim] = wait_for_workers(proc.pid, lambda pids: len(pids) == 1)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: value(scrape(admin), "lowserve_worker_exits_total", cause="signal") == 1,
            what="the kill counted",
        )
        samples = scrape(admin)
        assert value(samples, "lowserve_worker_exits_total", cause="crash") == 0
        # what the killed worker had reported stays counted
        assert total(samples, "lowserve_requests_total") == base
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()


def _status_line(s: socket.socket) -> bytes:
    line = b""
    while b"\r\n" not in line:
        chunk = s.recv(1)
        assert chunk, f"closed after {line!r}"
        line += chunk
    return line


def test_connections_near_the_descriptor_limit_are_refused_counted_and_served_after(
    app: Path,
) -> None:
    """With RLIMIT_NOFILE lowered, connections past the descriptor reserve get a 503 and
    count as refusals{reason="fd"}; once the held ones close, the worker serves again."""
    import resource

    nofile = 96
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--metrics", f"127.0.0.1:{admin}",
        "--no-access-log", cwd=app,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard)),
    )  # fmt: skip
    stderr = StderrLines(proc)
    held: list[socket.socket] = []
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        refused = 0
        while refused < 3:
            assert len(held) < nofile, "no connection was refused"
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status = _status_line(s).split(b" ")[1]
            if status == b"200":
                held.append(s)  # kept open: it holds a descriptor in the worker
            else:
                assert status == b"503"
                refused += 1
                s.close()
        # the worker's own descriptors and the reserve (16) come before the limit
        assert 30 < len(held) < nofile - 16
        stderr.wait_for("near the descriptor limit (RLIMIT_NOFILE 96)", 10)
        for s in held:
            s.close()
        held.clear()
        late = []  # a request may come before the worker has seen every close

        def served_again() -> bool:
            status = get(port)[0]
            late.append(status)
            return status == 200

        wait_until(served_again, what="served again")
        assert set(late) <= {200, 503}
        refused += late.count(503)
        wait_until(
            lambda: value(scrape(admin), "lowserve_refusals_total", reason="fd") == refused,
            what="every refusal counted",
        )
        assert value(scrape(admin), "lowserve_refusals_total", reason="limit") == 0
    finally:
        for s in held:
            s.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()
