"""Soak: mixed good and hostile traffic against the ``lowserve`` command, for a long time.

Serves the handler below with ``lowserve soak:handler`` (one worker) and runs client
processes that each loop over a weighted mix of:

* keep-alive GETs, pipelined GETs, 1 KiB POSTs echoed, chunked bodies of 1-byte chunks;
* malformed heads and malformed bodies (meant to fail: each must get its 4xx);
* uploads and downloads the client abandons midway; heads trickled byte by byte.

Every 10 s it samples the worker's RSS. At the end it reports requests by kind, the
requests that failed without being meant to (target 0), RSS growth after the warm-up
(target under 5%), and ERROR lines or tracebacks in the server's log (target 0).

    python bench/soak.py --duration 120 --clients 4
    python bench/soak.py --requests 3000000          # a few million requests
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIG = 1 << 20

try:  # the handler, when this file is served as ``soak:handler``
    from lowserve import web

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == "/echo":
            return web.Response(body=await request.read())
        if path == "/pid":
            return web.Response(text=str(os.getpid()))
        if path == "/big":
            resp = web.StreamResponse()
            resp.content_length = BIG
            await resp.prepare(request)
            for _ in range(BIG // 65536):
                await resp.write(b"x" * 65536)
            return resp
        return web.Response(text="Hello, World!")

except ImportError:  # pragma: no cover
    pass

GET = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024
CHUNKED = (
    b"POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"1\r\ny\r\n" * 4096
    + b"0\r\n\r\n"
)
BAD_HEADS = [
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 9000 + b"\r\n\r\n",
]
BAD_BODY = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"

MIX = [
    ("keepalive", 30),
    ("pipelined", 20),
    ("post", 15),
    ("chunked-tiny", 5),
    ("bad-head", 8),
    ("bad-body", 7),
    ("abandon-upload", 5),
    ("abandon-download", 5),
    ("trickle", 5),
]


class Failed(Exception):
    pass


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, head, body


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def one(kind: str, port: int, counts: collections.Counter[str]) -> None:
    reader, writer = await _open(port)
    try:
        if kind == "keepalive":
            for _ in range(20):
                writer.write(GET)
                status, _, _ = await _response(reader)
                if status != 200:
                    raise Failed(f"keepalive {status}")
            counts["requests"] += 20
        elif kind == "pipelined":
            writer.write(GET * 16)
            for _ in range(16):
                status, _, _ = await _response(reader)
                if status != 200:
                    raise Failed(f"pipelined {status}")
            counts["requests"] += 16
        elif kind == "post":
            writer.write(POST)
            status, _, body = await _response(reader)
            if status != 200 or len(body) != 1024:
                raise Failed(f"post {status}")
            counts["requests"] += 1
        elif kind == "chunked-tiny":
            writer.write(CHUNKED)
            status, _, body = await _response(reader)
            if status != 200 or body != b"y" * 4096:
                raise Failed(f"chunked {status}")
            counts["requests"] += 1
        elif kind in ("bad-head", "bad-body"):
            writer.write(random.choice(BAD_HEADS) if kind == "bad-head" else BAD_BODY)
            status, head, _ = await _response(reader)
            if not 400 <= status < 500 or b"Connection: close" not in head:
                raise Failed(f"{kind} got {status}")
            counts["refused as meant"] += 1
        elif kind == "abandon-upload":
            writer.write(POST[: len(POST) // 2])
            await asyncio.sleep(0.001)
            writer.transport.abort()
            counts["abandoned"] += 1
        elif kind == "abandon-download":
            writer.write(b"GET /big HTTP/1.1\r\nHost: soak\r\n\r\n")
            await reader.readexactly(20000)
            writer.transport.abort()
            counts["abandoned"] += 1
        elif kind == "trickle":
            for i in range(0, len(GET), 4):
                writer.write(GET[i : i + 4])
                await asyncio.sleep(0.002)
            status, _, _ = await _response(reader)
            if status != 200:
                raise Failed(f"trickle {status}")
            counts["requests"] += 1
    finally:
        if not writer.transport.is_closing():
            writer.close()


async def client(port: int, deadline: float, quota: int, out: dict[str, int]) -> None:
    counts: collections.Counter[str] = collections.Counter()
    kinds, weights = zip(*MIX, strict=True)

    async def worker() -> None:
        while time.monotonic() < deadline and counts["requests"] < quota:
            kind = random.choices(kinds, weights)[0]
            try:
                await asyncio.wait_for(one(kind, port, counts), 10)
            except (Failed, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                counts["failed"] += 1
                if counts["failed"] <= 5:
                    print(f"unexpected failure: {kind}: {exc!r}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(16)))
    out.update(counts)


def _client_process(port: int, deadline: float, quota: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out: dict[str, int] = {}
    asyncio.run(client(port, deadline, quota, out))
    queue.put(out)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds (at most)")
    ap.add_argument("--requests", type=int, default=10**9, help="stop after this many good ones")
    ap.add_argument("--clients", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before the RSS baseline")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(HERE / "out-soak.log", "w+")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lowserve",
            "soak:handler",
            "--app-dir",
            str(HERE),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "info",
        ],
        stderr=log,
        stdout=log,
    )
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"GET /pid HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := c.recv(4096):
                        data += chunk
                worker = int(data.partition(b"\r\n\r\n")[2])
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        start = time.monotonic()
        deadline = start + args.duration
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        procs = [
            multiprocessing.Process(
                target=_client_process,
                args=(port, deadline, args.requests // args.clients, queue),
            )
            for _ in range(args.clients)
        ]
        for p in procs:
            p.start()
        samples: list[tuple[float, int]] = []
        while any(p.is_alive() for p in procs):
            samples.append((time.monotonic() - start, rss_kib(worker)))
            for p in procs:
                p.join(timeout=10 / len(procs))
        results = [queue.get(timeout=30) for _ in procs]
        took = time.monotonic() - start
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    total: collections.Counter[str] = collections.Counter()
    for r in results:
        total.update(r)
    log.seek(0)
    text = log.read()
    errors = sum(1 for line in text.splitlines() if " ERROR " in line or "Traceback" in line)
    after = [kib for t, kib in samples if t >= args.warmup] or [samples[-1][1]]
    growth = (after[-1] - after[0]) / after[0] * 100
    print(f"duration            {took:.0f} s, {args.clients} client processes x 16 tasks")
    print(f"good requests       {total['requests']:,} ({total['requests'] / took:,.0f}/s)")
    print(f"refused as meant    {total['refused as meant']:,} (malformed heads and bodies)")
    print(f"abandoned           {total['abandoned']:,} (uploads and downloads cut midway)")
    print(f"unexpected failures {total['failed']} (target 0)")
    print(
        f"RSS                 {after[0] / 1024:.1f} MiB after warm-up -> "
        f"{after[-1] / 1024:.1f} MiB "
        f"at the end: {growth:+.1f}% (target < 5%); samples: "
        + " ".join(f"{kib / 1024:.0f}" for _, kib in samples)
    )
    print(f"ERROR lines         {errors} (target 0) in {len(text.splitlines())} log lines")


if __name__ == "__main__":
    main()
