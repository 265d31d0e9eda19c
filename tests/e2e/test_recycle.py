"""Recycling by age (--max-worker-age) and by memory (--max-worker-rss), under load:
replacement first, nothing lost, logged at INFO and counted in the metrics."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import pytest

from commandline import StderrLines, free_port, get, lowserve, wait_serving
from load import Load
from scrape import scrape, value

pytestmark = pytest.mark.timeout(120)

APP = textwrap.dedent(
    """
    import asyncio, os
    from lowserve import web

    HOARD = []

    async def handler(request):
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("t", "1")))
        if request.path == "/grow":
            HOARD.append(bytearray(int(request.query["mib"]) * 2**20))
        return web.Response(text=str(os.getpid()))
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


def _exits(admin: int, cause: str, at_least: int) -> float:
    """``lowserve_worker_exits_total{cause}`` once it reaches *at_least* (the old
    worker drains before it exits), within 20 s."""
    deadline = time.monotonic() + 20
    while True:
        seen = value(scrape(admin), "lowserve_worker_exits_total", cause=cause)
        if seen >= at_least or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def _recycles(lines: list[str], flag: str) -> list[str]:
    return [line for line in list(lines) if flag in line and "recycling it" in line]


def test_workers_recycle_by_age_one_at_a_time_losing_nothing(app: Path) -> None:
    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--workers", "2", "--no-access-log",
        "--max-worker-age", "1.5", "--max-worker-age-jitter", "0.5",
        "--metrics", f"127.0.0.1:{admin}", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        with Load(port, clients=20) as load:
            deadline = time.monotonic() + 60
            while len(_recycles(stderr.lines, "--max-worker-age")) < 4:
                assert time.monotonic() < deadline, stderr.lines[-5:]
                load.wait_for(50)
            load.wait_for(100)
        tally = load.tally
        print(f"4 recycles by age: {tally.ok} ok, {len(tally.failed)} failed")
        assert tally.failed == [] and tally.refused == 0
        assert _exits(admin, "recycle-age", 4) >= 4
        assert value(scrape(admin), "lowserve_worker_exits_total", cause="crash") == 0
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        stderr.join()
    assert code == 0
    assert not any("WARNING" in line or "ERROR" in line for line in stderr.lines)


def test_a_worker_over_max_worker_rss_is_replaced_losing_nothing(app: Path) -> None:
    port, admin = free_port(), free_port()
    proc = lowserve(
        "myapp:handler", "--port", str(port), "--no-access-log", "--max-worker-rss", "150",
        "--metrics", f"127.0.0.1:{admin}", cwd=app,
    )  # fmt: skip
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        first = get(port, "/")[1]
        with Load(port, clients=10) as load:
            load.wait_for(50)
            assert get(port, "/grow?mib=200")[0] == 200
            stderr.wait_for("over --max-worker-rss 150", 10)
            deadline = time.monotonic() + 20
            while get(port, "/")[1] == first:  # the new worker serves, the old one is gone
                assert time.monotonic() < deadline
                time.sleep(0.05)
            load.wait_for(50)
        tally = load.tally
        assert tally.failed == [] and tally.refused == 0
        line = _recycles(stderr.lines, "--max-worker-rss")[0]
        assert f"worker {first} uses" in line
        assert _exits(admin, "recycle-memory", 1) == 1
        samples = scrape(admin)
        assert all(
            v < 150 * 2**20 for (n, _), v in samples.items() if n == "lowserve_worker_rss_bytes"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        stderr.join()
    assert code == 0
