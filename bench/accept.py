"""What a new connection costs lowserve: its accept, its set-up, its first request.

1,024 connections opened at once wait for one another: the last one's first request
is answered only after every connection was accepted, made and served once
(bench/PROFILE.md, "The tail at 1,024 connections"). This measures that start per
connection, without wrk and without sockets' timing noise: N connections are queued
on a listener (each with a request sent) by a client process, then the server
accepts them in one burst (``lowserve.listening.BurstAcceptor``) and answers them.

    python bench/accept.py                                # µs per connection, by phase
    python bench/accept.py --tree /tmp/before/src --tree src --instructions
    python bench/accept.py --tree /tmp/before/src --tree src --memory

``--instructions`` counts callgrind instructions per connection (the difference
between bursts of 256 and 512, so start-up cancels out), deterministic to ~0.5%.
``--memory`` counts the bytes an idle keep-alive connection holds after its one
request (tracemalloc, 2,000 connections), the largest holders first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from inmemory import callgrind_instructions  # noqa: E402

# Opens N connections, sends a request on each, says "ok", then holds them open until
# its standard input closes (reading the answers first when asked to).
CLIENT = r"""
import resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port, n, read = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
conns = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conns.append(c)
if read:
    for c in conns:
        c.recv(65536)
print("ok", flush=True)
sys.stdin.read()
"""

CHILD = r"""
import asyncio, gc, json, os, resource, socket, subprocess, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import uvloop
from servers import make_handler
from lowserve import listening, web

n, mode, client = int(sys.argv[3]), sys.argv[4], sys.argv[5]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # valgrind lowers it
resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 1000, hard), hard))
clock = time.perf_counter

async def queue(port, count, read):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", client, str(port), str(count), "1" if read else "0",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert await proc.stdout.readline() == b"ok\n"
    return proc

async def main():
    loop = asyncio.get_running_loop()
    server = web.Server(make_handler(web), access_log=None)
    server.bind_loop(loop)
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    acceptor = listening.BurstAcceptor(loop, listener, server, None, 4096)
    async def served(count):
        while server.requests_count < count:
            await asyncio.sleep(0)
    # one connection first: imports and caches warmed, as on a server already serving
    warm = await queue(port, 1, True)
    if mode == "memory":
        import tracemalloc
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        proc = await queue(port, n, True)
        for _ in range(50):
            await asyncio.sleep(0.01)  # tasks parked, answers written
        gc.collect()
        diff = tracemalloc.take_snapshot().compare_to(before, "lineno")
        top = []
        for s in diff[:12]:
            where = s.traceback[0]
            if s.size_diff / n >= 8:
                top.append((s.size_diff / n, s.count_diff / n, f"{where.filename}:{where.lineno}"))
        print(json.dumps({"bytes": sum(s.size_diff for s in diff) / n, "top": top}))
    else:
        acceptor.close()  # the burst is queued with no one accepting, then taken at once
        proc = await queue(port, n, False)
        acceptor = listening.BurstAcceptor(loop, listener, server, None, 4096)
        gcs = []
        gc.callbacks.append(lambda phase, info: phase == "stop" and gcs.append(info["generation"]))
        t0 = clock()
        acceptor._accept()
        t1 = clock()
        await asyncio.sleep(0)  # connection_made, called soon
        t2 = clock()
        await served(n + 1)
        t3 = clock()
        print(json.dumps({
            "accept": (t1 - t0) / n * 1e6, "made": (t2 - t1) / n * 1e6,
            "first": (t3 - t2) / n * 1e6, "gc": [gcs.count(g) for g in (0, 1, 2)],
        }))
    acceptor.close()
    for p in (proc, warm):
        p.stdin.close()
        await p.wait()

uvloop.run(main())
"""


def child(tree: str, n: int, mode: str) -> list[str]:
    return [sys.executable, "-c", CHILD, tree, str(HERE), str(n), mode, CLIENT]


def timed(tree: str, n: int) -> dict[str, object]:
    out = subprocess.run(child(tree, n, "timed"), capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def memory(tree: str, n: int) -> dict[str, Any]:
    out = subprocess.run(child(tree, n, "memory"), capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def instructions(tree: str) -> float:
    """callgrind instructions per connection: bursts of 256 and 512 compared."""
    counts = [callgrind_instructions(child(tree, n, "timed"), 900) for n in (256, 512)]
    return (counts[1] - counts[0]) / 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", action="append", help="a src/ directory (default: this checkout)")
    ap.add_argument("--connections", type=int, default=1024, help="the burst (timed mode)")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs per tree (median)")
    ap.add_argument("--instructions", action="store_true", help="count instructions (callgrind)")
    ap.add_argument("--memory", action="store_true", help="bytes held per idle connection")
    args = ap.parse_args()
    trees = args.tree or [str(HERE.parent / "src")]
    if args.instructions:
        counts = [instructions(t) for t in trees]
        for tree, count in zip(trees, counts, strict=True):
            print(f"{tree}: {count:,.0f} instructions per connection (accept, made, first request)")
        if len(trees) > 1:
            print(f"ratio {counts[-1] / counts[0]:.4f}x")
        return
    if args.memory:
        for tree in trees:
            held = memory(tree, 2000)
            print(f"{tree}: {held['bytes']:,.0f} bytes per idle connection (tracemalloc)")
            for size, blocks, where in held["top"]:
                print(f"  {size:7.1f} B {blocks:5.2f} blocks  {where}")
        return
    runs: dict[str, list[dict[str, object]]] = {t: [] for t in trees}
    for _ in range(args.rounds):
        for tree in trees:
            runs[tree].append(timed(tree, args.connections))
    for tree in trees:
        phases = {
            k: statistics.median(float(r[k]) for r in runs[tree])  # type: ignore[arg-type]
            for k in ("accept", "made", "first")
        }
        cells = ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
        collected = runs[tree][-1]["gc"]
        print(f"{tree}: µs per connection (median of {args.rounds}): {cells}; gc {collected}")


if __name__ == "__main__":
    main()
