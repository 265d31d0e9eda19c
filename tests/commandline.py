"""Running the ``lowserve`` command in tests: the app, subprocess helpers, waits.

Shared by the command's tests (tests/cli) and the end-to-end ones (tests/e2e).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

APP = textwrap.dedent(
    """
    import asyncio, os, sys
    from lowserve import web

    async def handler(request):
        if request.path == "/slow":
            print("slow request started", file=sys.stderr, flush=True)
            await asyncio.sleep(float(request.query.get("t", "1")))
        if request.path == "/pid":
            return web.Response(text=str(os.getpid()))
        return web.json_response({
            "path": request.path, "scheme": request.scheme, "remote": request.remote,
            "host": request.host, "pid": os.getpid(), "version": VERSION,
        })

    VERSION = 1

    def make_handler():
        return handler

    async def amake_handler():
        return handler

    class Obj:
        async def handle(self, request):
            return web.Response(text="method")

    obj = Obj()

    class Endpoint:
        async def __call__(self, request):
            return web.Response(text="called")

    endpoint = Endpoint()
    not_async = 42

    def sync_handler(request):
        return web.Response(text="sync")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lowserve(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: int | None = None,
    pass_fds: Collection[int] = (),
    preexec_fn: Callable[[], object] | None = None,
    group: str | None = None,
) -> subprocess.Popen[str]:
    """``python -m lowserve ARGS`` with piped text output; the keywords are Popen's."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "lowserve", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
        preexec_fn=preexec_fn,
        group=group,
    )


def run_once(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lowserve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def get(
    port: int, path: str = "/", *, host: str = "127.0.0.1", timeout: float = 5.0, headers: str = ""
) -> tuple[int, str]:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class StderrLines:
    """A process's stderr lines, collected by a thread as they come (``.lines``), so a
    test can wait for one while the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        stream = proc.stderr
        self._reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, timeout: float) -> None:
        """Until a line holds *text*; fail if *timeout* seconds pass first."""
        deadline = time.monotonic() + timeout
        while not any(text in ln for ln in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} in {self.lines}"
            time.sleep(0.02)

    def join(self) -> list[str]:
        """Once the process has exited: every line."""
        self._reader.join(5)
        return self.lines


def notify_receiver(path: str) -> socket.socket:
    """A datagram socket at *path*, as systemd's NOTIFY_SOCKET (reads time out at 20 s)."""
    recv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    recv.bind(path)
    recv.settimeout(20)
    return recv


def wait_serving(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"lowserve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        with contextlib.suppress(OSError):
            get(port, timeout=1)
            return
        time.sleep(0.05)
    raise AssertionError("lowserve did not start serving")


def tls_get(port: int, ctx: ssl.SSLContext, path: str = "/") -> bytes:
    """One HTTPS request over a fresh connection; the whole raw answer."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def tls_get_when_up(port: int, ctx: ssl.SSLContext, path: str = "/") -> bytes:
    """:func:`tls_get`, retried until the server has started (20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return tls_get(port, ctx, path)
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's live children, from /proc (Linux)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def wait_for_workers(
    supervisor: int, done: Callable[[set[int]], bool], timeout: float = 30
) -> set[int]:
    """Poll the supervisor's children until ``done`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pids = worker_pids(supervisor)
        if done(pids):
            return pids
        assert time.monotonic() < deadline, f"workers stayed {pids}"
        time.sleep(0.05)


@contextlib.contextmanager
def serving(
    *args: str, cwd: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    proc = lowserve(*args, "--port", str(port), cwd=cwd, env=env)
    stderr = StderrLines(proc)  # read as it comes, so the pipe never fills
    try:
        wait_serving(port, proc)
        # Every worker is up (one answering is not enough: a worker that dies
        # before the first start-up completes stops the supervisor, by design).
        stderr.wait_for("serving on", 20)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
