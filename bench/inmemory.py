"""lowserve's own cost per request, without sockets: two source trees compared.

A connection is fed requests through ``data_received`` and writes into a list, so
the figure is lowserve's Python per request (no kernel, no load generator): the
instrument for a change on the hot path, where wrk's run-to-run noise (±10% on
these shared machines) hides a few percent. Trees are measured in alternation, in
fresh interpreters, and the best of each tree's runs is reported.

    python bench/inmemory.py                         # this checkout only
    python bench/inmemory.py --tree /tmp/before/src --tree src --rounds 5
    python bench/inmemory.py --tree /tmp/before/src --tree src --instructions
    python bench/inmemory.py --tree src --tree src:metrics --instructions   # --metrics' cost

``--instructions`` counts CPU instructions per request under valgrind's callgrind
instead of timing: the same figure for the same tree whatever else the machine is
doing (the difference between a run of 2,000 and one of 4,000 requests, so start-up
cancels out). It is the figure to quote for a hot-path change on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = {
    "hello": (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    "pipelined": (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 16, 16),
    "post-1k": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 1024\r\n\r\n" + b"x" * 1024,
        1,
    ),
    # a webhook: a 16 KiB body that arrives in the read that brings its head
    "post-16k": (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b"Content-Length: 16384\r\n\r\n" + b'{"k":"v"}'.ljust(16384, b" "),
        1,
    ),
    "json": (b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    # hello as a browser asks for a page: eight fields (wrk sends one), the cost per field
    "headers": (
        b"GET /page HTTP/1.1\r\nHost: example.com\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
        b"Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n"
        b"\r\n",
        1,
    ),
}

CHILD = r"""
import asyncio, json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from servers import make_handler
from lowserve import web

class Transport:
    def __init__(self): self.n = 0
    def write(self, data): self.n += 1
    def get_extra_info(self, name, default=None): return default
    def is_closing(self): return False
    def pause_reading(self): pass
    def resume_reading(self): pass
    def can_write_eof(self): return True
    def write_eof(self): pass
    def close(self): pass
    def abort(self): pass

async def main():
    scenarios = json.loads(sys.argv[3])
    fixed = int(sys.argv[4])  # instruction counts: n requests, one pass (0: timed rounds)
    metrics = sys.argv[5] == "1"
    server = web.Server(make_handler(web), access_log=None)
    if metrics:
        server.record_metrics()  # what a worker under --metrics does
    out = {}
    for name, (raw, per) in scenarios.items():
        raw = raw.encode("latin-1")
        conn = server()
        conn.connection_made(Transport())
        n = fixed // per if fixed else 20000 // per
        best = float("inf")
        for _ in range(1 if fixed else 5):
            t0 = time.perf_counter()
            for i in range(n):
                conn.data_received(raw)
                if i % 32 == 31:
                    await asyncio.sleep(0)  # the end-of-iteration flush
            await asyncio.sleep(0)
            best = min(best, (time.perf_counter() - t0) / (n * per))
        conn.connection_lost(None)
        out[name] = best * 1e6
    print(json.dumps(out))

asyncio.run(main())
"""


def _tree(spec: str) -> tuple[str, str]:
    """A --tree argument: ``PATH`` or ``PATH:metrics`` (the same tree, --metrics on)."""
    path, _, mode = spec.partition(":")
    if mode not in ("", "metrics"):
        raise SystemExit(f"--tree {spec}: give PATH or PATH:metrics")
    return path, "1" if mode else "0"


def measure(tree: str) -> dict[str, float]:
    scenarios = {k: (v[0].decode("latin-1"), v[1]) for k, v in SCENARIOS.items()}
    path, metrics = _tree(tree)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, str(HERE), json.dumps(scenarios), "0", metrics],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def callgrind_instructions(command: list[str], timeout: float, cwd: Path | None = None) -> int:
    """The instructions *command* executes, counted by valgrind's callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                # setarch -R: no address randomisation, so id()-ordered sets and the
                # allocator repeat (runs of one tree otherwise differ by ~0.7%)
                *("setarch", platform.machine(), "-R"),
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                *command,
            ],
            capture_output=True,
            check=True,
            timeout=timeout,
            cwd=cwd,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        assert totals is not None
        return int(totals.group(1))


def instructions(tree: str, name: str) -> float:
    """Instructions per request for one scenario (callgrind; 2,000 vs 4,000 requests)."""
    raw, per = SCENARIOS[name]
    scenario = json.dumps({name: (raw.decode("latin-1"), per)})
    path, metrics = _tree(tree)
    counts = [
        callgrind_instructions(
            [sys.executable, "-c", CHILD, path, str(HERE), scenario, str(n), metrics], 900
        )
        for n in (2000, 4000)
    ]
    return (counts[1] - counts[0]) / ((4000 // per - 2000 // per) * per)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--tree",
        action="append",
        help="a src/ directory (default: this checkout); PATH:metrics runs it with --metrics on",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--instructions", action="store_true", help="count instructions (callgrind)")
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    args = ap.parse_args()
    trees = args.tree or [str(HERE.parent / "src")]
    if args.instructions:
        print("| scenario | " + " | ".join(f"`{t}` instructions/req" for t in trees) + " | ratio |")
        print("|---|" + "---|" * len(trees) + "---|")
        for name in args.scenario or list(SCENARIOS):
            counts = [instructions(t, name) for t in trees]
            ratio = f"{counts[-1] / counts[0]:.4f}x" if len(trees) > 1 else ""
            cells = " | ".join(f"{c:,.0f}" for c in counts)
            print(f"| {name} | {cells} | {ratio} |", flush=True)
        return
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for _ in range(args.rounds):
        for tree in trees:
            runs[tree].append(measure(tree))
    print("| scenario | " + " | ".join(f"`{t}` µs/req" for t in trees) + " | ratio |")
    print("|---|" + "---|" * len(trees) + "---|")
    for name in SCENARIOS:
        best = [min(r[name] for r in runs[t]) for t in trees]
        spread = [statistics.median(r[name] for r in runs[t]) for t in trees]
        ratio = f"{best[0] / best[-1]:.3f}x" if len(trees) > 1 else ""
        cells = " | ".join(f"{b:.2f} (median {m:.2f})" for b, m in zip(best, spread, strict=True))
        print(f"| {name} | {cells} | {ratio} |")


if __name__ == "__main__":
    main()
