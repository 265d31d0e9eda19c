"""ServerRunner and its sites; lowserve.run serving until a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from commandline import free_port
from load import Tally, sigterm_under_per_request_load
from lowserve import web

from conftest import exchange, serve
from conftest import hello as answer_ok


async def hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text=f"hi {request.remote!r}")


async def test_tcp_site_port_zero_and_addresses() -> None:
    runner = web.ServerRunner(web.Server(hello, access_log=None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site.port != 0
        assert runner.addresses == site.addresses == [("127.0.0.1", site.port)]
        assert site.name == f"http://127.0.0.1:{site.port}"
        assert runner.sites == {site}
        out = await exchange(site.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"hi '127.0.0.1'")
    finally:
        await runner.cleanup()
    assert runner.server is None
    assert site.addresses == runner.addresses == []


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    runner = web.ServerRunner(web.Server(hello, access_log=None))
    await runner.setup()
    site = web.TCPSite(runner, "::1", 0)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        pytest.skip("::1 not configured")
    try:
        assert site.name.startswith("http://[::1]:")
        reader, writer = await asyncio.open_connection("::1", site.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        out = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert out.endswith(b"hi '::1'")
    finally:
        await runner.cleanup()


async def test_unix_site_with_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    runner = web.ServerRunner(web.Server(hello, access_log=None))
    await runner.setup()
    site = web.UnixSite(runner, path, mode=0o660)
    await site.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        conn = aiohttp.UnixConnector(path=str(path))
        async with (
            aiohttp.ClientSession(connector=conn) as session,
            session.get("http://x/") as resp,
        ):
            assert resp.status == 200
            assert (await resp.text()).startswith("hi ")
    finally:
        await runner.cleanup()
    assert not path.exists()


async def test_sock_site() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.ServerRunner(web.Server(hello, access_log=None))
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        assert site.name == f"http://127.0.0.1:{port}"
        out = await exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 ")
    finally:
        await runner.cleanup()


async def test_site_before_setup_refused() -> None:
    runner = web.ServerRunner(web.Server(hello))
    with pytest.raises(RuntimeError):
        web.TCPSite(runner, "127.0.0.1", 0)


def test_unknown_server_option_is_type_error() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        web.Server(hello, no_such_option=1)
    with pytest.raises(ValueError):
        web.Server(hello, keepalive_timeout=-1)


def test_run_serves_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, sys
        from lowserve import web

        async def handler(request):
            if request.path == "/slow":
                await asyncio.sleep(0.5)
            return web.Response(text="served")

        web.run(handler, host="127.0.0.1", port=int(sys.argv[1]), access_log=None)
        print("stopped cleanly", flush=True)
    """)
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}" in line

        async def client() -> bytes:
            task = asyncio.create_task(exchange(port, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"))
            await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)  # graceful: the slow request still completes
            return await task

        out = asyncio.run(client())
        assert out.endswith(b"served")
        assert b"Connection: close" in out
        stdout, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
        assert b"stopped cleanly" in stdout
    finally:
        proc.kill()


async def test_drain_answers_a_request_sent_on_an_idle_connection_then_closes() -> None:
    """A keep-alive connection idle when the stop begins still gets its next request
    answered, with Connection: close, during drain_grace; one that stays idle is closed."""
    async with serve(answer_ok, drain_grace=0.5) as s:
        r1, w1 = await asyncio.open_connection("127.0.0.1", s.port)
        r2, w2 = await asyncio.open_connection("127.0.0.1", s.port)
        for w in (w1, w2):
            w.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        for r in (r1, r2):
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            assert b"Connection: close" not in head
            await r.readexactly(2)
        stopping = asyncio.ensure_future(s.runner.cleanup())
        deadline = asyncio.get_running_loop().time() + 5
        while not s.server.shutting_down:  # until the drain has begun
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        w1.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # on its way as the stop began
        answer = await asyncio.wait_for(r1.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close\r\n" in answer
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(r2.read(), 5) == b""  # closed once the grace is over
        assert 0.2 < asyncio.get_running_loop().time() - started < 1.5
        await asyncio.wait_for(stopping, 5)
        assert s.server.drained_count == 1 and s.server.cancelled_count == 0
        for w in (w1, w2):
            w.close()


async def test_a_socket_accepted_as_the_stop_began_is_answered_before_the_stop_ends() -> None:
    """The loop makes a protocol when it accepts and calls its connection_made an
    iteration later: a stop that begins in between (a worker idle when told to stop)
    still waits for that connection and answers its request."""
    loop = asyncio.get_running_loop()
    server = web.Server(answer_ok, access_log=None)
    server.bind_loop(loop)
    ours, theirs = socket.socketpair()
    protocol = server()  # accepted: made, not yet connected
    stopping = asyncio.ensure_future(server.shutdown(5))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done()  # waiting for the connection still to be made
    await loop.connect_accepted_socket(lambda: protocol, ours)
    reader, writer = await asyncio.open_connection(sock=theirs)
    writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close\r\n" in answer
    await asyncio.wait_for(stopping, 5)
    assert server.drained_count == 1
    writer.close()


async def test_a_protocol_never_connected_holds_the_stop_for_drain_grace_only() -> None:
    """A TLS handshake that fails never calls connection_made: the stop waits for it
    no longer than drain_grace."""
    server = web.Server(answer_ok, access_log=None, drain_grace=0.2)
    server.bind_loop(asyncio.get_running_loop())
    server()
    started = time.monotonic()
    await asyncio.wait_for(server.shutdown(5), 5)
    assert 0.15 < time.monotonic() - started < 2


async def test_handlers_cancelled_at_the_end_of_a_stop_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(request: web.BaseRequest) -> web.Response:
        entered.set()
        await gate.wait()
        return web.Response()

    async with serve(stuck, shutdown_timeout=0.3) as s:
        _r, w = await asyncio.open_connection("127.0.0.1", s.port)
        w.write(b"GET /stuck/here HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.wait_for(s.runner.cleanup(), 5)
        assert s.server.cancelled_count == 1
        w.close()
    lines = [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING"]
    assert any("cancelled at shutdown: GET /stuck/here" in line for line in lines)


def test_run_second_ctrl_c_ends_the_drain_without_a_traceback(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, sys
        from lowserve import web

        async def handler(request):
            print("handling", flush=True)
            await asyncio.sleep(30)
            return web.Response(text="late")

        web.run(handler, host="127.0.0.1", port=int(sys.argv[1]), access_log=None)
    """)
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        while (line := proc.stdout.readline()) != b"handling\n":  # the handler runs
            assert line, "the script ended before handling the request"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 1
    assert "Traceback" not in err and "was destroyed but it is pending" not in err


def test_access_log_times_are_fine_grained_and_unknown_codes_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from lowserve.api.accesslog import AccessLogger

    with caplog.at_level(logging.WARNING, "lowserve"):
        AccessLogger(logging.getLogger("x"), '%a %Z "%r" %D %{X}q')
    assert any("unknown code(s) %Z, %{X}q" in r.getMessage() for r in caplog.records)


async def test_access_log_microseconds_are_not_zero() -> None:
    import logging

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("lowserve.test-access")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    async with serve(answer_ok, access_log=logger, access_log_format="%D %Tf") as s:
        for _ in range(5):
            await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert len(records) == 5
    assert all(int(r.split()[0]) > 0 for r in records), records


async def test_runner_and_site_edges(tmp_path: Path) -> None:
    """What aiohttp's runner does at the edges: unknown keywords, the server only after
    setup, one registration per site, default ports, names, and a UnixSite's file."""
    with pytest.raises(TypeError, match="unexpected arguments: bogus"):
        web.ServerRunner(web.Server(hello), bogus=1)
    server = web.Server(hello, access_log=None)
    runner = web.ServerRunner(server)
    assert runner.server is None and runner.sites == set() and runner.addresses == []
    await runner.setup()
    assert runner.server is server
    assert web.TCPSite(runner).name == "http://0.0.0.0:8080"
    assert web.TCPSite(runner, "::1", ssl_context=ssl.create_default_context()).name == (
        "https://[::1]:8443"
    )
    path = tmp_path / "s.sock"
    unix = web.UnixSite(runner, path)
    assert unix.name == f"http://unix:{path}:" and repr(unix) == f"<UnixSite http://unix:{path}:>"
    await unix.start()
    try:
        with pytest.raises(RuntimeError, match="already registered"):
            await unix.start()
        assert runner.sites == {unix} and runner.addresses == [str(path)]
    finally:
        await runner.cleanup()
    assert not path.exists() and runner.server is None
    await unix.stop()  # twice: nothing left to do
    with pytest.raises(NotImplementedError):
        _ = web.BaseSite.name.fget(unix)


def test_handle_signals_raises_graceful_exit(tmp_path: Path) -> None:
    """ServerRunner(handle_signals=True), as aiohttp's users write it: SIGTERM raises
    GracefulExit in the loop, cleanup() runs and removes the handlers."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, signal
        from lowserve import web

        async def handler(request):
            return web.Response(text="ok")

        async def main():
            runner = web.ServerRunner(web.Server(handler), handle_signals=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            print(site.port, flush=True)
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()
                loop = asyncio.get_running_loop()
                print("handlers removed:", not loop.remove_signal_handler(signal.SIGTERM))

        try:
            asyncio.run(main())
        except web.GracefulExit as exc:
            print("graceful exit", exc.code, flush=True)
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.splitlines() == ["handlers removed: True", "graceful exit 1"], err


@pytest.mark.parametrize("listener", ["tcp", "unix"])
def test_run_resets_no_queued_connection_at_sigterm(tmp_path: Path, listener: str) -> None:
    """web.run's stop (runner.cleanup) keeps new connections out of its sites' sockets
    and accepts the queued ones before closing: clients that connect for every
    request see no reset across three SIGTERMs."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, sys
        from lowserve import web

        async def handler(request):
            if request.path.startswith("/slow"):
                await asyncio.sleep(0.05)
            return web.Response(text="ok")

        where = sys.argv[1]
        if where.isdigit():
            web.run(handler, host="127.0.0.1", port=int(where), access_log=None)
        else:
            web.run(handler, path=where, access_log=None)
    """)
    )
    totals = Tally()
    for _ in range(3):
        where: int | str = free_port() if listener == "tcp" else str(tmp_path / "app.sock")
        proc = subprocess.Popen(
            [sys.executable, str(script), str(where)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert "Serving on" in proc.stdout.readline()
            sigterm_under_per_request_load(where, proc, totals)
        finally:
            proc.kill()
            proc.wait()
    print(f"web.run, 3 SIGTERMs, {listener}: {totals.ok} ok, {len(totals.failed)} failed")
    assert totals.failed == [] and totals.ok >= 900
    assert not (tmp_path / "app.sock").exists()


async def test_sites_listen_with_a_backlog_for_a_thousand_connections_at_once() -> None:
    """aiohttp's sites listen with a backlog of 128: 1,024 connections opened at once
    overflow it, and each dropped handshake waits a second for TCP's retry. lowserve's
    sites take DEFAULT_BACKLOG (2048, capped by net.core.somaxconn)."""
    import shutil

    from lowserve.options import DEFAULT_BACKLOG

    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listener's backlog")
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    runner = web.ServerRunner(web.Server(hello, access_log=None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{site.port}"], capture_output=True, text=True, timeout=10
        ).stdout.split()
        assert int(out[2]) == min(DEFAULT_BACKLOG, somaxconn) >= 1024, out  # Send-Q: the backlog
    finally:
        await runner.cleanup()
