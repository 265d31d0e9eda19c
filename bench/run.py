"""Side-by-side benchmarks: lowserve against aiohttp's low-level Server, uvicorn and granian.

Each server is pinned to core 0 and wrk to core 1 (``taskset``), so figures are per core.
Every scenario runs against every server in one invocation: compare the ratios, never an
absolute figure across runs (the machines are shared and noisy).

    python bench/run.py                      # all scenarios, all peers found
    python bench/run.py --scenario hello --duration 5 --runs 3
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

SCENARIOS = {
    # name: (path, lua script or None, connections, what it shows)
    "hello": ("/", None, 64, "hello world, 64 keep-alive connections"),
    "pipelined": ("/", LUA_PIPELINE, 64, "hello world, 16 requests pipelined per connection"),
    "post-1k": ("/echo", LUA_POST, 64, "POST of 1 KiB read with request.read() and echoed"),
    "json": ("/json", None, 64, "a ~1 KiB JSON response built from a dict"),
    "ws-echo": (
        "/ws",
        None,
        32,
        "WebSocket echo of 34-byte text messages over 32 connections, "
        "messages/s (Node ws client, no compression; lowserve and aiohttp only)",
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
}
UNITS = {
    "file": "MB/s",
    "download": "MB/s",
    "upload": "MB/s",
    "idle": "KiB/conn",
    "ws-echo": "msg/s",
}
ONLY = {
    "ws-echo": ("lowserve", "aiohttp"),
    "download": ("lowserve", "aiohttp", "uvicorn", "floor"),
    "file": ("lowserve", "aiohttp", "floor"),
    "upload": ("lowserve", "aiohttp", "uvicorn", "floor"),
    # granian serves from a child process and stalls past a few thousand connections here
    "idle": ("lowserve", "aiohttp", "uvicorn"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peers() -> list[str]:
    found = ["lowserve", "aiohttp"]
    for mod in ("uvicorn", "granian"):
        with contextlib.suppress(ImportError):
            __import__(mod)
            found.append(mod)
    return found


def pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def running(kind: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
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
            "servers:asgi_app",
        ]
    else:
        cmd = [sys.executable, str(HERE / "servers.py"), kind, str(port)]
    proc = subprocess.Popen(
        pin(0) + cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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


def wrk(port: int, path: str, lua: str | None, conns: int, duration: float) -> tuple[float, float]:
    cmd = [*pin(1), "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency"]
    with tempfile.TemporaryDirectory() as tmp:
        if lua:
            script = Path(tmp) / "scenario.lua"
            script.write_text(lua)
            cmd += ["-s", str(script)]
        cmd.append(f"http://127.0.0.1:{port}{path}")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
    if "Non-2xx" in out or ("Socket errors" in out and "read 0, write 0, timeout 0" not in out):
        print(f"    warning: errors reported by wrk:\n{out}", file=sys.stderr)
    return rps, p99


def ws_echo(port: int, conns: int, duration: float) -> tuple[float, float]:
    """Messages/s of the Node ``ws`` echo client (bench/node), pinned to core 1."""
    node_dir = HERE / "node"
    if not (node_dir / "node_modules" / "ws").exists():
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund"],
            cwd=node_dir,
            check=True,
            timeout=300,
        )
    cmd = [
        *pin(1),
        "node",
        str(node_dir / "ws_echo.js"),
        f"ws://127.0.0.1:{port}/ws",
        str(conns),
        f"{duration:g}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    import json

    return float(json.loads(out.strip().splitlines()[-1])["rate"]), float("nan")


def curl_speed(port: int, path: str, upload: Path | None) -> tuple[float, float]:
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
    return float(out) / 1e6, float("nan")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_cost(port: int, pid: int, count: int) -> tuple[float, float]:
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
    return (after - before) / count, float("nan")


def command_workers(workers: int, duration: float) -> dict[str, tuple[float, float]]:
    """`lowserve app:handler --workers N` (unpinned) under one wrk thread, plain and pipelined.

    Returns, per load, req/s and the share of the machine's CPU time wrk itself used:
    the load generator shares the two cores with the workers.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
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
        ],
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
    servers = args.peer or peers()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    tmp = Path(tempfile.mkdtemp())
    upload_file = tmp / "upload.bin"
    for name in args.scenario or list(SCENARIOS):
        path, lua, conns, _ = SCENARIOS[name]
        results[name] = {}
        kinds = [k for k in [*servers, "floor"] if k in ONLY.get(name, servers)]
        for kind in kinds:
            port = free_port()
            with running(kind, port) as proc:
                if name == "ws-echo":
                    ws_echo(port, conns, args.warmup)
                    runs = [ws_echo(port, conns, args.duration) for _ in range(args.runs)]
                elif name in ("download", "file", "upload"):
                    if name == "upload" and not upload_file.exists():
                        with open(upload_file, "wb") as fh:
                            fh.truncate(100 * 2**20)
                    up = upload_file if name == "upload" else None
                    runs = [curl_speed(port, path, up) for _ in range(args.runs)]
                elif name == "idle":
                    runs = [idle_cost(port, proc.pid, conns)]
                else:
                    wrk(port, path, lua, conns, args.warmup)
                    runs = [wrk(port, path, lua, conns, args.duration) for _ in range(args.runs)]
            rps = statistics.median(r for r, _ in runs)
            p99 = statistics.median(p for _, p in runs)
            results[name][kind] = (rps, p99)
            print(
                f"{name:10} {kind:9} {rps:12.2f} {UNITS.get(name, 'req/s')}  p99 {p99:7.2f} ms",
                flush=True,
            )
    workers: dict[int, dict[str, tuple[float, float]]] = {}
    if not args.scenario or args.workers:
        for n in (1, 2):
            workers[n] = command_workers(n, args.duration)
            for load, (rps, share) in workers[n].items():
                print(f"workers    {n} {load:9} {rps:12.0f} req/s  wrk {share:.0%}", flush=True)
    report = render(results, servers, args, workers)
    chart(results, servers, Path(args.out).with_suffix(".png"))
    Path(args.out).write_text(report)
    print(report)


def ratio(name: str, row: dict[str, tuple[float, float]], peer: str) -> str:
    if peer not in row or "lowserve" not in row or not row[peer][0]:
        return "n/a"
    ours, theirs = row["lowserve"][0], row[peer][0]
    value = theirs / ours if name == "idle" else ours / theirs  # idle: lower is better
    return f"**{value:.2f}x**"


def render(
    results: dict[str, dict[str, tuple[float, float]]],
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
        "different runs are not comparable: compare the ratios.",
        "",
        "| scenario | unit | "
        + " | ".join(cols)
        + " | "
        + " | ".join(f"lowserve vs {p}" for p in [*peers_, "floor"])
        + " |",
        "|" + "---|" * (2 + len(cols) + len(peers_) + 1),
    ]
    for name, row in results.items():
        cells = [f"{row[s][0]:.1f}" if s in row else "n/a" for s in cols]
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
    lines += ["", "p99 latencies (ms, wrk scenarios):", ""]
    for name, row in results.items():
        if name in ("hello", "pipelined", "post-1k", "json"):
            lines.append(
                f"- {name}: " + ", ".join(f"{s} {row[s][1]:.2f}" for s in servers if s in row)
            )
    versions = []
    for mod in servers:
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
    lines += ["", "Versions: " + ", ".join(versions), "", "![ratios](RESULTS.png)", ""]
    return "\n".join(lines)


def chart(
    results: dict[str, dict[str, tuple[float, float]]], servers: list[str], out: Path
) -> None:
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
