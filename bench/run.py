"""Side-by-side benchmarks: lowserve against aiohttp's low-level Server, uvicorn and granian
(and, over HTTP/2, hypercorn and granian).

Each server is pinned to core 0 and wrk to core 1 (``taskset``), so figures are per core.
Every scenario runs against every server in one invocation: compare the ratios, never an
absolute figure across runs (the machines are shared and noisy).

    python bench/run.py                      # all scenarios, all peers found
    python bench/run.py --scenario hello --duration 5 --runs 3
    python bench/run.py --scenario h2-hello --scenario h2-post-1k --scenario h2-download
    python bench/run.py --scenario hello --peer lowserve --peer lowserve-metrics  # --metrics
    python bench/run.py --scenario hello --peer lowserve --peer lowserve@../before/src

``lowserve-command`` serves the same handler through the ``lowserve`` command (one
worker), as it is deployed; ``KIND@PATH`` runs lowserve or lowserve-command from another
tree's ``src`` (built in place), for a change's before and after in one run.

The HTTP/2 scenarios (``h2-*``) speak h2c with prior knowledge, loaded by h2load
(Debian's nghttp2-client) or curl, against hypercorn and granian (``--http 2``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA_PIPELINE = """
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"""
LUA_POST = """
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
"""
LUA_WEBHOOK = LUA_POST.replace('"x", 1024', '"x", 16384')
# A new connection per request: wrk connects again after each answer that closes.
LUA_CLOSE = """
wrk.headers["Connection"] = "close"
"""

# Appended to every wrk script: wrk's --latency prints 50/75/90/99% only.
LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d %d\\n", latency:percentile(50),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""

SCENARIOS = {
    # name: (path, lua script or None, connections, what it shows)
    "hello": ("/", None, 64, "hello world, 64 keep-alive connections"),
    "hello-256": ("/", None, 256, "hello world, 256 keep-alive connections (latency tail)"),
    "hello-1024": ("/", None, 1024, "hello world, 1,024 keep-alive connections (latency tail)"),
    "hello-close": (
        "/",
        LUA_CLOSE,
        64,
        "hello world, a new connection for each request (Connection: close), 64 at a "
        "time: clients without keep-alive, or a proxy that does not reuse connections",
    ),
    "pipelined": ("/", LUA_PIPELINE, 64, "hello world, 16 requests pipelined per connection"),
    "post-1k": ("/echo", LUA_POST, 64, "POST of 1 KiB read with request.read() and echoed"),
    "post-16k": (
        "/echo",
        LUA_WEBHOOK,
        64,
        "a webhook: POST of 16 KiB, its head and body in one write, read and echoed",
    ),
    "json": ("/json", None, 64, "a ~1 KiB JSON response built from a dict"),
    "ws-echo": (
        "/ws",
        None,
        32,
        "WebSocket echo of 34-byte text messages over 32 connections, "
        "messages/s (Node ws client, no compression; lowserve and aiohttp only)",
    ),
    "ws-small": (
        "/ws",
        None,
        32,
        "WebSocket echo of 34-byte text messages over 32 connections: the server "
        "process's CPU time per message (µs, from /proc/PID/stat; lower is better; "
        "ratio is peer / lowserve)",
    ),
    "ws-fragmented": (
        "/ws",
        None,
        4,
        "WebSocket echo of 256 KiB text messages each sent as 1,024 fragments of 256 "
        "bytes, 4 connections: server CPU per message (µs)",
    ),
    "ws-compressed": (
        "/ws",
        None,
        32,
        "WebSocket echo of 1 KiB JSON-like text messages with permessage-deflate, 32 "
        "connections: server CPU per message (µs)",
    ),
    "download": (
        "/stream",
        None,
        1,
        "a 100 MiB StreamResponse written in 64 KiB chunks, MB/s "
        "(curl); `floor` is sendfile() of the same bytes from a raw socket",
    ),
    "file": (
        "/file",
        None,
        1,
        "a 100 MiB file sent with FileResponse, MB/s (curl; lowserve and aiohttp); "
        "`floor` is sendfile() of the same bytes from a raw socket",
    ),
    "upload": (
        "/upload",
        None,
        1,
        "a 100 MiB upload read with iter_chunked(64 KiB), MB/s "
        "(curl --data-binary); `floor` reads and drops it from a raw socket",
    ),
    "idle": (
        "/",
        None,
        10000,
        "10,000 idle keep-alive connections (one request each): server RSS "
        "growth in KiB per connection (lower is better; ratio is peer / lowserve)",
    ),
    "h2-hello": (
        "/",
        None,
        64,
        "HTTP/2 (h2c) hello world, h2load with 64 connections x 10 concurrent streams",
    ),
    "h2-post-1k": (
        "/echo",
        None,
        64,
        "HTTP/2 (h2c) POST of 1 KiB read and echoed, h2load 64 connections x 10 streams",
    ),
    "h2-download": (
        "/stream",
        None,
        1,
        "HTTP/2 (h2c): the 100 MiB StreamResponse, MB/s (curl --http2-prior-knowledge)",
    ),
}
#: The HTTP/2 scenarios' peers: hypercorn (pure Python on the same h2) and granian (Rust).
H2_PEERS = ("lowserve", "hypercorn", "granian")
UNITS = {
    "file": "MB/s",
    "download": "MB/s",
    "h2-download": "MB/s",
    "upload": "MB/s",
    "idle": "KiB/conn",
    "ws-echo": "msg/s",
    "ws-small": "µs CPU/msg",
    "ws-fragmented": "µs CPU/msg",
    "ws-compressed": "µs CPU/msg",
}
# The scenarios where `floor` is the bare uvloop + httptools server (servers.py floor-http).
FLOOR_HTTP = {
    "hello",
    "hello-256",
    "hello-1024",
    "hello-close",
    "pipelined",
    "post-1k",
    "post-16k",
    "json",
}
LOWER_IS_BETTER = {"idle", "ws-small", "ws-fragmented", "ws-compressed"}
LATENCY = FLOOR_HTTP
ONLY = {
    "ws-echo": ("lowserve", "aiohttp"),
    "ws-small": ("lowserve", "aiohttp"),
    "ws-fragmented": ("lowserve", "aiohttp"),
    "ws-compressed": ("lowserve", "aiohttp"),
    "download": ("lowserve", "aiohttp", "uvicorn", "floor"),
    "file": ("lowserve", "aiohttp", "floor"),
    "upload": ("lowserve", "aiohttp", "uvicorn", "floor"),
    # granian serves from a child process and stalls past a few thousand connections here
    "idle": ("lowserve", "aiohttp", "uvicorn"),
    "h2-hello": H2_PEERS,
    "h2-post-1k": H2_PEERS,
    "h2-download": H2_PEERS,
}


def _base(kind: str) -> str:
    """The server a kind runs: lowserve for its command, its metrics and other trees."""
    name = kind.partition("@")[0]
    return "lowserve" if name.startswith("lowserve") else name


def command_line(port: int, workers: int) -> list[str]:
    """``lowserve app:handler`` (bench/app.py: servers.py's handler) on *port*."""
    return [
        sys.executable,
        "-m",
        "lowserve",
        "app:handler",
        "--app-dir",
        str(HERE),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _runs_in(kind: str, scenario: str) -> bool:
    """Whether *kind* (a peer, or the floor) runs in *scenario*."""
    if kind == "hypercorn" and not scenario.startswith("h2-"):
        return False
    # the command's CPU is its processes' (supervisor and worker), measured by wrk's
    # scenarios; elsewhere the library's row stands for both
    if kind.partition("@")[0] == "lowserve-command" and scenario not in LATENCY:
        return False
    if scenario not in ONLY:
        return kind != "floor"  # the HTTP floor is added apart (FLOOR_HTTP)
    return _base(kind) in ONLY[scenario]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peers() -> list[str]:
    found = ["lowserve", "lowserve-command", "aiohttp"]
    for mod in ("uvicorn", "granian", "hypercorn"):
        with contextlib.suppress(ImportError):
            __import__(mod)
            found.append(mod)
    return found


def pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def running(kind: str, port: int, scenario: str) -> Iterator[subprocess.Popen[bytes]]:
    env = None
    kind, at, tree = kind.partition("@")
    if at:  # lowserve@PATH: another tree's src (a before-and-after run of one change)
        env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    if kind == "granian":
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-ws",
            *(["--http", "2"] if scenario.startswith("h2-") else []),
            "servers:asgi_app",
        ]
    elif kind == "hypercorn":
        cmd = [
            sys.executable,
            "-m",
            "hypercorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "uvloop",
            "--log-level",
            "warning",
            "servers:asgi_app",
        ]
    elif kind == "lowserve-command":
        # lowserve as it is deployed: the command, whose worker freezes start-up's objects
        # out of the collector and keeps its heap (cli/worker.py); the library row beside
        # it is the same code without those process-wide settings.
        cmd = command_line(port, 1)
    else:
        if kind == "floor" and scenario in FLOOR_HTTP:
            kind = "floor-http"
        cmd = [sys.executable, str(HERE / "servers.py"), kind, str(port)]
    proc = subprocess.Popen(
        pin(0) + cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{kind} did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


Run = dict[str, float]  # one measured run: "rate" (the unit's figure), latencies in ms


def wrk(port: int, path: str, lua: str | None, conns: int, duration: float, pid: int) -> Run:
    """req/s, latency percentiles (p50, p99, p99.9, max; ms) and the server's CPU per
    request (µs: its processes' user and system time over the run, by the requests
    answered) of one wrk run against the server *pid*."""
    cmd = [*pin(1), "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency"]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scenario.lua"
        script.write_text((lua or "") + LUA_DONE)
        cmd += ["-s", str(script), f"http://127.0.0.1:{port}{path}"]
        before = tree_cpu_seconds(pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
        used = tree_cpu_seconds(pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"PCT (\d+) (\d+) (\d+) (\d+)", out)  # microseconds
    pct = [int(v) / 1000 for v in m.groups()] if m else [float("nan")] * 4
    if "Non-2xx" in out or ("Socket errors" in out and "read 0, write 0, timeout 0" not in out):
        print(f"    warning: errors reported by wrk:\n{out}", file=sys.stderr)
    return {
        "rate": rps,
        "p50": pct[0],
        "p99": pct[1],
        "p999": pct[2],
        "max": pct[3],
        "cpu": used / max(1, count) * 1e6,
    }


def node_client(script: str, *args: str, timeout: float) -> dict[str, float]:
    """Run one of bench/node's clients, pinned to core 1; its last line, parsed."""
    import json

    node_dir = HERE / "node"
    if not (node_dir / "node_modules" / "ws").exists():
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund"],
            cwd=node_dir,
            check=True,
            timeout=300,
        )
    cmd = [*pin(1), "node", str(node_dir / script), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if result.get("errors"):
        print(f"    warning: {script} {args}: {result['errors']} errors", file=sys.stderr)
    return result


def ws_echo(port: int, conns: int, duration: float) -> Run:
    """Messages/s of the Node ``ws`` echo client (bench/node)."""
    url = f"ws://127.0.0.1:{port}/ws"
    done = node_client("ws_echo.js", url, str(conns), f"{duration:g}", timeout=duration + 30)
    return {"rate": done["rate"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of process *pid* and of its live descendants (granian serves from a
    child process)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def ws_cpu(port: int, pid: int, mode: str, conns: int, duration: float) -> Run:
    """µs of the server's CPU per echoed message, the client's whole run counted."""
    url = f"ws://127.0.0.1:{port}/ws"
    before = cpu_seconds(pid)
    done = node_client("ws_cpu.js", url, str(conns), f"{duration:g}", mode, timeout=duration + 30)
    used = cpu_seconds(pid) - before
    return {"rate": used / max(1.0, done["messages"]) * 1e6, "msgs": done["rate"]}


def curl_speed(port: int, path: str, upload: Path | None) -> Run:
    cmd = [*pin(1), "curl", "-s", "-o", "/dev/null", "-H", "Expect:"]
    if upload is not None:
        cmd += [
            "--data-binary",
            f"@{upload}",
            "-H",
            "Content-Type: application/octet-stream",
            "-w",
            "%{speed_upload}",
        ]
    else:
        cmd += ["-w", "%{speed_download}"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=120
    ).stdout
    return {"rate": float(out) / 1e6}


def h2load(port: int, path: str, conns: int, duration: float, body: Path | None) -> Run:
    """h2load over h2c: *conns* connections, 10 concurrent streams each, for *duration*
    seconds; the rate in req/s and the mean request time in ms."""
    cmd = [*pin(1), "h2load", "-c", str(conns), "-m", "10", "-t", "1", "-D", f"{duration:g}"]
    if body is not None:
        cmd += ["-d", str(body), "-H", "content-type: application/octet-stream"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    failed = re.search(r"(\d+) failed, (\d+) errored", out)
    if failed and (int(failed.group(1)) or int(failed.group(2))):
        print(f"    warning: failures reported by h2load:\n{out}", file=sys.stderr)
    if rps is None:
        raise RuntimeError(f"h2load failed: {out[-2000:]}")
    return {"rate": float(rps.group(1))}


def curl_h2_speed(port: int, path: str) -> Run:
    """MB/s of a download over h2c (curl --http2-prior-knowledge)."""
    out = subprocess.run(
        [
            *pin(1),
            "curl",
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download} %{http_version}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    if out[1:] != ["2"]:
        raise RuntimeError(f"not HTTP/2: {out}")
    return {"rate": float(out[0]) / 1e6}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_cost(port: int, pid: int, count: int) -> Run:
    """KiB of server RSS per idle keep-alive connection (after one request each)."""
    import resource
    import socket as so

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    warm = [so.create_connection(("127.0.0.1", port)) for _ in range(100)]
    for c in warm:
        c.sendall(req)
        c.recv(65536)
    time.sleep(0.5)
    before = rss_kib(pid)
    conns = []
    for _ in range(count):
        c = so.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(req)
        conns.append(c)
    for c in conns:
        c.recv(65536)
    time.sleep(1.0)
    after = rss_kib(pid)
    for c in conns + warm:
        c.close()
    return {"rate": (after - before) / count}


def command_workers(workers: int, duration: float) -> dict[str, tuple[float, float]]:
    """`lowserve app:handler --workers N` (unpinned) under one wrk thread, plain and pipelined.

    Returns, per load, req/s and the share of the machine's CPU time wrk itself used:
    the load generator shares the two cores with the workers.
    """
    port = free_port()
    proc = subprocess.Popen(
        command_line(port, workers),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, tuple[float, float]] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        time.sleep(1.0)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
            lua.write(LUA_PIPELINE)
            lua.flush()
            for load, extra in (("plain", []), ("pipelined", ["-s", lua.name])):
                cmd = ["wrk", "-t1", "-c128", f"-d{duration:g}s", *extra]
                cmd.append(f"http://127.0.0.1:{port}/")
                before = os.times()
                text = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
                after = os.times()
                cpu = (after.children_user - before.children_user) + (
                    after.children_system - before.children_system
                )
                wall = after.elapsed - before.elapsed
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text.stdout).group(1))  # type: ignore[union-attr]
                out[load] = (rps, cpu / (wall * (os.cpu_count() or 1)))
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    ap.add_argument("--peer", action="append", help="servers to run (default: all installed)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per server (median)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--workers", action="store_true", help="also run --workers 2 vs 1")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("error: wrk is not installed (apt-get install wrk)")
    if any(n.startswith("h2-") for n in args.scenario or SCENARIOS) and not shutil.which("h2load"):
        sys.exit("error: h2load is not installed (apt-get install nghttp2-client)")
    # The floor is added per scenario below: a --peer floor would run it twice.
    servers = [p for p in (args.peer or peers()) if p != "floor"]
    args.load = [os.getloadavg()[0]]  # the machine's load, reported beside the figures
    results: dict[str, dict[str, Run]] = {}
    tmp = Path(tempfile.mkdtemp())
    upload_file = tmp / "upload.bin"
    for name in args.scenario or list(SCENARIOS):
        kinds = [k for k in [*servers, "floor"] if _runs_in(k, name)]
        if name in FLOOR_HTTP:
            kinds.append("floor")
        # Every server of the scenario runs at once (the idle ones cost nothing) and the
        # measured runs take turns, so that a burst of noise from the machine's other
        # users falls on all of them rather than on one.
        with contextlib.ExitStack() as stack:
            procs = {
                kind: (port, stack.enter_context(running(kind, port, name)))
                for kind in kinds
                for port in [free_port()]
            }
            runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
            for i in range(-1, args.runs):  # run -1 is the warm-up
                for kind, (port, proc) in procs.items():
                    run = measure(name, port, proc.pid, args, upload_file, warmup=i < 0)
                    if run is not None:
                        runs[kind].append(run)
        results[name] = {}
        for kind in kinds:
            row = {key: statistics.median(r[key] for r in runs[kind]) for key in runs[kind][0]}
            results[name][kind] = row
            tail = (
                f"  p50 {row['p50']:.2f}  p99 {row['p99']:.2f}  p99.9 {row['p999']:.2f}"
                f"  max {row['max']:.2f} ms  CPU {row['cpu']:.1f} µs/req"
                if "p99" in row
                else ""
            )
            spread = ", ".join(f"{r['rate']:.1f}" for r in runs[kind])
            print(
                f"{name:13} {kind:9} {row['rate']:12.2f} {UNITS.get(name, 'req/s')}{tail}"
                f"  (runs: {spread})",
                flush=True,
            )
    workers: dict[int, dict[str, tuple[float, float]]] = {}
    if not args.scenario or args.workers:
        for n in (1, 2):
            workers[n] = command_workers(n, args.duration)
            for load, (rps, share) in workers[n].items():
                print(f"workers    {n} {load:9} {rps:12.0f} req/s  wrk {share:.0%}", flush=True)
    args.load.append(os.getloadavg()[0])
    report = render(results, servers, args, workers)
    chart(results, servers, Path(args.out).with_suffix(".png"))
    Path(args.out).write_text(report)
    print(report)


def measure(
    name: str, port: int, pid: int, args: argparse.Namespace, upload_file: Path, warmup: bool
) -> Run | None:
    """One run of scenario *name* against the server on *port*; None for a warm-up."""
    path, lua, conns, _ = SCENARIOS[name]
    duration = args.warmup if warmup else args.duration
    if name == "h2-download":
        if warmup:
            return None
        run = curl_h2_speed(port, path)
    elif name.startswith("h2-"):
        body = None
        if name == "h2-post-1k":
            body = upload_file.with_name("post-1k.bin")
            body.write_bytes(b"x" * 1024)
        run = h2load(port, path, conns, duration, body)
    elif name == "ws-echo":
        run = ws_echo(port, conns, duration)
    elif name.startswith("ws-"):
        run = ws_cpu(port, pid, name[3:], conns, duration)
    elif name in ("download", "file", "upload"):
        if warmup:
            return None
        if name == "upload" and not upload_file.exists():
            with open(upload_file, "wb") as fh:
                fh.truncate(100 * 2**20)
        run = curl_speed(port, path, upload_file if name == "upload" else None)
    elif name == "idle":
        return idle_cost(port, pid, conns) if warmup else None  # measured once
    else:
        run = wrk(port, path, lua, conns, duration, pid)
    return None if warmup else run


def ratio(name: str, row: dict[str, Run], peer: str) -> str:
    if peer not in row or "lowserve" not in row or not row[peer]["rate"]:
        return "n/a"
    ours, theirs = row["lowserve"]["rate"], row[peer]["rate"]
    value = theirs / ours if name in LOWER_IS_BETTER else ours / theirs
    return f"**{value:.2f}x**"


def render(
    results: dict[str, dict[str, Run]],
    servers: list[str],
    args: argparse.Namespace,
    workers: dict[int, dict[str, tuple[float, float]]],
) -> str:
    peers_ = [s for s in servers if s != "lowserve"]
    cols = [*servers, "floor"]
    lines = [
        "# Benchmark results",
        "",
        f"One run of `python bench/run.py` on {datetime.date.today()}: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; each server pinned to "
        f"core 0 and the load generator to core 1; median of {args.runs} runs of "
        f"{args.duration:g} s after {args.warmup:g} s warm-up (wrk scenarios). Figures from "
        "different runs are not comparable: compare the ratios. The servers of a scenario run "
        "side by side and its measured runs take turns. Load average (1 min) at the start "
        f"and the end: {args.load[0]:.1f}, {args.load[-1]:.1f} on {os.cpu_count()} cores.",
        "",
        "| scenario | unit | "
        + " | ".join(cols)
        + " | "
        + " | ".join(f"lowserve vs {p}" for p in [*peers_, "floor"])
        + " |",
        "|" + "---|" * (2 + len(cols) + len(peers_) + 1),
    ]
    for name, row in results.items():
        cells = [f"{row[s]['rate']:.1f}" if s in row else "n/a" for s in cols]
        ratios = [ratio(name, row, p) for p in [*peers_, "floor"]]
        lines.append(
            f"| {name} | {UNITS.get(name, 'req/s')} | " + " | ".join(cells + ratios) + " |"
        )
    if workers:
        lines += [
            "",
            "`lowserve --workers 2` against `--workers 1` through the command (nothing pinned; "
            "one wrk thread, 128 connections, sharing the two cores with the workers):",
            "",
            "| load | 1 worker | 2 workers | ratio | wrk's share of the CPU (2 workers) |",
            "|---|---|---|---|---|",
        ]
        for load in workers[1]:
            one, two = workers[1][load][0], workers[2][load][0]
            lines.append(
                f"| {load} | {one:.0f} req/s | {two:.0f} req/s | **{two / one:.2f}x** "
                f"| {workers[2][load][1]:.0%} |"
            )
    lines += ["", "Scenarios:", ""]
    lines += [f"- **{n}**: {SCENARIOS[n][3]}" for n in results]
    lines += [
        "",
        "Latencies (ms, wrk scenarios; median over the runs of each percentile), and the "
        "server's CPU per request (µs: its user and system time over a run, by the requests "
        "answered; where the load generator is the limit, as pipelined, the figure to set "
        "against the floor's):",
        "",
        "| scenario | server | p50 | p99 | p99.9 | max | CPU µs/req | CPU / floor's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        if name in LATENCY:
            for s in cols:
                if s in row:
                    r = row[s]
                    floor = row.get("floor", {}).get("cpu")
                    vs = f"{r['cpu'] / floor:.2f}" if floor else "n/a"
                    lines.append(
                        f"| {name} | {s} | {r['p50']:.2f} | {r['p99']:.2f} | "
                        f"{r['p999']:.2f} | {r['max']:.2f} | {r['cpu']:.1f} | {vs} |"
                    )
    versions = []
    for mod in servers:
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
    lines += ["", "Versions: " + ", ".join(versions), "", "![ratios](RESULTS.png)", ""]
    return "\n".join(lines)


def chart(results: dict[str, dict[str, Run]], servers: list[str], out: Path) -> None:
    """A bar chart of lowserve's ratio to each peer, per scenario."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no chart)", file=sys.stderr)
        return
    peers_ = [s for s in servers if s != "lowserve"]
    names = list(results)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(peers_))
    for i, peer in enumerate(peers_):
        values = []
        for name in names:
            r = ratio(name, results[name], peer)
            values.append(float(r.strip("*x")) if r != "n/a" else 0.0)
        ax.bar([x + i * width for x in range(len(names))], values, width, label=f"vs {peer}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(2.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks([x + width * (len(peers_) - 1) / 2 for x in range(len(names))], names)
    ax.set_ylabel("lowserve / peer (higher is better)")
    ax.set_title("lowserve against its peers, one run, per core")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
