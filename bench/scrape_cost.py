"""What ``--metrics`` costs a worker holding many open connections, measured.

A worker sends its supervisor one snapshot a second (``lowserve.conn.metrics.snapshot``,
JSON-encoded, one datagram): totals kept as requests are answered, plus one pass over
the open connections for their bytes, keep-alive reuse, requests in flight and
WebSockets. That pass is the only part that grows with the connections. This script
opens N real keep-alive connections over loopback (a child process holds them, each
after one answered request), then times the worker's whole report, snapshot and
``json.dumps``, in the server's process, and the supervisor's side: folding the
report into its fleet and rendering ``/metrics`` (neither depends on N).

    python bench/scrape_cost.py --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time

CHILD = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"OK"):
        got += s.recv(4096)
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"""


async def _hello(request: object) -> object:
    from lowserve import web

    return web.Response(text="OK")


def _timed(fn: object, rounds: int) -> float:
    """The median seconds of *rounds* calls."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def main(n: int, rounds: int, parts: bool) -> None:
    from lowserve import web
    from lowserve.cli.metrics import Fleet
    from lowserve.conn.metrics import snapshot

    server = web.Server(_hello, access_log=None)  # type: ignore[arg-type]
    recorder = server.record_metrics()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, "127.0.0.1", 0, backlog=4096)
    port = listener.sockets[0].getsockname()[1]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(port), str(n),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    line = await asyncio.wait_for(child.stdout.readline(), 300)
    assert line.strip() == b"ready", line
    while len(server.connections) < n:
        await asyncio.sleep(0.01)
    report = json.dumps(snapshot(server, recorder)).encode()
    worker = _timed(lambda: json.dumps(snapshot(server, recorder)).encode(), rounds)
    fleet = Fleet()
    fleet.started(1, 1)

    def supervisor() -> None:
        fleet.receive(1, report)
        fleet.exposition()

    scrape = _timed(supervisor, rounds)
    if parts:
        part = _timed(server.traffic, rounds)
        print(f"  of which Server.traffic(), the pass over the connections: {part * 1e3:.2f} ms")
    print(f"connections open: {len(server.connections)}, requests: {server.requests_count}")
    print(f"worker, once a second: snapshot + json.dumps: {worker * 1e3:.2f} ms (median)")
    print(f"report: {len(report)} bytes")
    print(f"supervisor, per report and scrape: receive + exposition: {scrape * 1e3:.2f} ms")
    child.stdin.close()
    await child.wait()
    listener.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--parts", action="store_true", help="time the snapshot's passes apart")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(main(args.connections, args.rounds, args.parts))
