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


WS_PEERS = ("lowserve", "aiohttp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    ap.add_argument("--peer", action="append", help="servers to run (default: all installed)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per server (median)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("error: wrk is not installed (apt-get install wrk)")
    servers = args.peer or peers()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name in args.scenario or list(SCENARIOS):
        path, lua, conns, _ = SCENARIOS[name]
        results[name] = {}
        for kind in servers:
            if name == "ws-echo" and kind not in WS_PEERS:
                continue
            port = free_port()
            with running(kind, port):
                if name == "ws-echo":
                    ws_echo(port, conns, args.warmup)
                    runs = [ws_echo(port, conns, args.duration) for _ in range(args.runs)]
                else:
                    wrk(port, path, lua, conns, args.warmup)
                    runs = [wrk(port, path, lua, conns, args.duration) for _ in range(args.runs)]
            rps = statistics.median(r for r, _ in runs)
            p99 = statistics.median(p for _, p in runs)
            results[name][kind] = (rps, p99)
            print(f"{name:10} {kind:9} {rps:10.0f} req/s  p99 {p99:7.2f} ms", flush=True)
    report = render(results, servers, args)
    Path(args.out).write_text(report)
    print(report)


def render(
    results: dict[str, dict[str, tuple[float, float]]], servers: list[str], args: argparse.Namespace
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"One run of `python bench/run.py` on {datetime.date.today()}: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; server pinned to core 0, "
        f"wrk to core 1; median of {args.runs} runs of {args.duration:g} s after "
        f"{args.warmup:g} s warm-up.",
        "",
        "| scenario | "
        + " | ".join(f"{s} req/s (p99 ms)" for s in servers)
        + " | "
        + " | ".join(f"lowserve / {s}" for s in servers if s != "lowserve")
        + " |",
        "|" + "---|" * (1 + len(servers) * 2 - 1),
    ]
    for name, row in results.items():
        cells = [f"{row[s][0]:.0f} ({row[s][1]:.2f})" if s in row else "n/a" for s in servers]
        ratios = [
            f"**{row['lowserve'][0] / row[s][0]:.2f}x**" if s in row else "n/a"
            for s in servers
            if s != "lowserve"
        ]
        lines.append(f"| {name} | " + " | ".join(cells + ratios) + " |")
    lines += ["", "Scenarios:", ""]
    lines += [f"- **{n}**: {SCENARIOS[n][3]}" for n in results]
    versions = []
    for mod in servers:
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
    lines += ["", "Versions: " + ", ".join(versions), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
