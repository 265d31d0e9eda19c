"""A real Prometheus server (Debian's ``prometheus``) scrapes lowserve's --metrics under
load, across a SIGHUP rolling restart and --max-requests recycles; its HTTP API must
count every request the client got an answer to, no more and no fewer, every byte the
clients sent and read, the keep-alive reuse they saw, and a WebSocket's messages."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from commandline import APP, StderrLines, free_port, lowserve, wait_serving
from load import Load
from scrape import parse, scrape, scrape_text, settled, total

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]


def _query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        data = json.load(answer)
    assert data["status"] == "success", data
    result: list[dict[str, object]] = data["data"]["result"]
    return result


def _scalar(port: int, promql: str) -> float | None:
    result = _query(port, promql)
    if not result:
        return None
    value = result[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


def _start_prometheus(tmp_path: Path, target: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: lowserve\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    )
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        assert proc.poll() is None, "prometheus exited"
        assert time.monotonic() < deadline, "prometheus did not become ready"
        time.sleep(0.2)


# The command line's app, and a WebSocket echo on /ws.
WS_APP = APP + textwrap.dedent(
    """
    async def with_ws(request):
        if request.path != "/ws":
            return await handler(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws
    """
)


def _websocket_session(port: int, messages: int) -> tuple[int, int]:
    """Echo *messages* text messages over a raw WebSocket, then close: the bytes sent
    and the bytes received (to the server's EOF)."""
    key = base64.b64encode(os.urandom(16))
    sent = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for i in range(messages):
        payload, mask = f"message {i}".encode(), os.urandom(4)
        masked = bytes(b ^ mask[j % 4] for j, b in enumerate(payload))
        sent += bytes((0x81, 0x80 | len(payload))) + mask + masked
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(sent)
        got = b""
        while got.count(b"message ") < messages:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 101 ")
        close = bytes((0x88, 0x82)) + b"\0\0\0\0" + b"\x03\xe8"  # 1000, mask of zeros
        sock.sendall(close)
        sent += close
        while chunk := sock.recv(65536):
            got += chunk
    return len(sent), len(got)


def _documented_queries() -> list[str]:
    """The PromQL blocks of docs/observability.md and the dashboard's expressions
    (its variables given a value)."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "observability.md").read_text()
    queries = [q.strip() for q in re.findall(r"```promql\n(.*?)```", doc, re.S)]
    dashboard = json.loads((root / "deploy" / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$job", ".*")
            queries.append(expr)
    assert len(queries) >= 15
    return queries


def test_prometheus_counts_every_request_across_a_restart_and_recycles(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(WS_APP)
    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:with_ws", "--port", str(port), "--workers", "2", "--max-requests", "1000",
        "--metrics", f"127.0.0.1:{admin}", "--no-access-log", "--log-level", "info",
        cwd=tmp_path,
    )  # fmt: skip
    stderr = StderrLines(proc)
    prom, prom_port = None, 0
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        prom, prom_port = _start_prometheus(tmp_path, admin)
        base = settled(admin)  # wait_serving's requests
        before = scrape(admin)
        # Prometheus applies its targets a few seconds after it starts: the load
        # begins once it has scraped lowserve, so that every rate() has samples.
        deadline = time.monotonic() + 30
        while _scalar(prom_port, 'up{job="lowserve"}') != 1:
            assert time.monotonic() < deadline, "prometheus never scraped lowserve"
            time.sleep(0.2)
        scrapes: list[str] = []
        with Load(port, clients=20) as load:
            load.wait_for(300)
            proc.send_signal(signal.SIGHUP)
            stderr.wait_for("restart complete", 30)
            while sum("recycling" in line for line in stderr.lines) < 2:
                load.wait_for(200, timeout=30)
                scrapes.append(scrape_text(admin)[2])
        tally = load.tally
        assert tally.failed == [] and tally.refused == 0
        ws_sent, ws_received = _websocket_session(port, 10)
        expected = base + tally.ok + 1  # the WebSocket's 101
        # every scrape taken under load parses, and no counter ever went down
        parsed = [parse(text) for text in scrapes]
        counts = [total(p, "lowserve_requests_total") for p in parsed]
        assert counts == sorted(counts)

        def prometheus_sees(promql: str, want: float = expected) -> float | None:
            deadline = time.monotonic() + 20
            seen = None
            while time.monotonic() < deadline:
                seen = _scalar(prom_port, promql)
                if seen == want:
                    break
                time.sleep(0.25)
            return seen

        assert prometheus_sees("sum(lowserve_requests_total)") == expected
        assert prometheus_sees("sum(lowserve_request_duration_seconds_count)") == expected
        # every byte the clients sent was read, every byte they read was written, and
        # each request after a connection's first counts as keep-alive reuse
        for name, theirs in (
            ("lowserve_bytes_read_total", tally.sent + ws_sent),
            ("lowserve_bytes_written_total", tally.received + ws_received),
            ("lowserve_keepalive_requests_total", tally.reused),
        ):
            want = total(before, name) + theirs
            assert prometheus_sees(f"sum({name})", want) == want, name
        assert tally.reused > tally.ok / 2  # keep-alive clients, reconnecting at drains
        # the WebSocket: one opened, its 10 messages each way
        assert prometheus_sees("sum(lowserve_websockets_total)", 1) == 1
        for name in ("received", "sent"):
            metric = f"sum(lowserve_websocket_messages_{name}_total)"
            assert prometheus_sees(metric, 10) == 10, name
        assert _scalar(prom_port, 'up{job="lowserve"}') == 1
        exits = {
            str(series["metric"]["cause"]): float(series["value"][1])  # type: ignore[index]
            for series in _query(prom_port, "lowserve_worker_exits_total")
        }
        starts = _scalar(prom_port, "lowserve_worker_starts_total")
        assert starts is not None
        # Every exit is a reload or a recycle (an old worker may reach --max-requests
        # while its replacement starts); none crashed, two workers still serve.
        reloads, recycles = exits["reload"], exits["recycle-requests"]
        assert recycles >= 2 and reloads + recycles == starts - 2 and starts >= 4, exits
        assert sum(exits.values()) == reloads + recycles
        # Prometheus saw the counter only grow: no reset across the worker changes
        assert _scalar(prom_port, "sum(resets(lowserve_requests_total[5m]))") == 0
        # every query of docs/observability.md and of the Grafana dashboard runs
        for promql in _documented_queries():
            _query(prom_port, promql)  # asserts Prometheus accepted it
        for promql in ("sum by (status) (rate(lowserve_requests_total[1m]))",
                       "histogram_quantile(0.99, sum by (le) "
                       "(rate(lowserve_request_duration_seconds_bucket[1m])))"):  # fmt: skip
            assert _query(prom_port, promql), promql
        print(
            f"prometheus: {expected:.0f} requests counted, {tally.ok} answered under load "
            f"({tally.reused} on a used connection, {tally.sent} bytes sent, "
            f"{tally.received} read); {reloads:.0f} reload exits, {recycles:.0f} recycles"
        )
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr.join()
