"""The ``lowserve`` command, run as a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from commandline import (
    APP,
    StderrLines,
    free_port,
    get,
    lowserve,
    notify_receiver,
    run_once,
    serving,
    tls_get,
    tls_get_when_up,
    wait_for_workers,
    wait_serving,
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "broken.py").write_text("import nonexistent_dependency_xyz\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('module-level bug')\n")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nomodule_xyz:handler",
            "Error: cannot import module 'nomodule_xyz': No module named 'nomodule_xyz'",
        ),
        ("myapp:missing", "Error: module 'myapp' has no attribute 'missing'"),
        ("myapp:obj.missing", "Error: object 'myapp:obj' has no attribute 'missing'"),
        ("myapp", "Error: handler must look like module:attribute, got 'myapp'"),
        ("myapp:not_async", "Error: 'myapp:not_async' is not an async callable (it is an int)"),
        ("myapp:obj", "Error: 'myapp:obj' is not an async callable (it is an Obj)"),
        ("myapp:sync_handler", "Error: 'myapp:sync_handler' is not an async callable"),
        ("nofile.py:handler", "Error: cannot import file 'nofile.py': no such file"),
    ],
)
def test_bad_handler_strings(app_dir: Path, spec: str, message: str) -> None:
    result = run_once(spec, "--check", cwd=app_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_import_error_inside_module_keeps_traceback(app_dir: Path) -> None:
    for spec, text in (
        ("broken:handler", "nonexistent_dependency_xyz"),
        ("raises:handler", "module-level bug"),
    ):
        result = run_once(spec, "--check", cwd=app_dir)
        assert result.returncode != 0
        assert "Traceback" in result.stderr and text in result.stderr


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["myapp:handler"], "an async function"),
        (["myapp:obj.handle"], "an async function"),
        (["myapp:make_handler", "--factory"], "an async function"),
        (["myapp:amake_handler", "--factory"], "an async function"),
        (["myapp.py:handler"], "an async function"),
        (["myapp:endpoint"], "an Endpoint"),
    ],
)
def test_check_resolves(app_dir: Path, args: list[str], shown: str) -> None:
    result = run_once(*args, "--check", cwd=app_dir)
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout


def test_app_dir_flag(app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("cwd")
    assert run_once("myapp:handler", "--check", cwd=elsewhere).returncode == 2
    assert (
        run_once("myapp:handler", "--check", "--app-dir", str(app_dir), cwd=elsewhere).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "missing HANDLER"),
        (["myapp:handler", "--reload", "--workers", "2"], "--reload"),
        (["myapp:handler", "--bind", "nonsense"], "nonsense"),
        (["myapp:handler", "--unix-mode", "9x9", "--unix", "/tmp/x.sock"], "octal"),
        (["myapp:handler", "--port", "99999"], "'--port'"),
        (["myapp:handler", "--no-such-flag"], "--no-such-flag"),
        (["myapp:handler", "--forwarded-allow-ips", "10.0.0.0/33"], "--forwarded-allow-ips: "),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(app_dir: Path, args: list[str], said: str) -> None:
    r = run_once(*args, cwd=app_dir)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: "), r.stderr
    assert said in r.stderr and r.stderr.endswith("(see lowserve --help)\n")


def test_shell_completion_as_documented(app_dir: Path) -> None:
    script = run_once(cwd=app_dir, env={"_LOWSERVE_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_lowserve_completion()" in script.stdout
    words = {
        "_LOWSERVE_COMPLETE": "bash_complete",
        "COMP_WORDS": "lowserve --wor",
        "COMP_CWORD": "1",
    }
    r = run_once(cwd=app_dir, env=words)
    assert r.returncode == 0 and "plain,--workers" in r.stdout.split()


def test_version_and_help(app_dir: Path) -> None:
    r = run_once("--version", cwd=app_dir)
    assert (
        r.returncode == 0 and "lowserve" in r.stdout and "Python" in r.stdout
    ) or "CPython" in r.stdout
    r = run_once("--help", cwd=app_dir)
    assert r.returncode == 0 and "--keepalive-timeout" in r.stdout and "--workers" in r.stdout


def test_port_in_use_exit_3(app_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_once("myapp:handler", "--port", str(port), cwd=app_dir)
    assert r.returncode == 3
    assert f"Error: cannot listen on 127.0.0.1:{port}: address already in use" in r.stderr


def test_unreadable_tls_exit_3(app_dir: Path) -> None:
    r = run_once(
        "myapp:handler",
        "--port",
        str(free_port()),
        "--ssl-certfile",
        "/nonexistent.pem",
        cwd=app_dir,
    )
    assert r.returncode == 3
    assert r.stderr.strip() == "Error: --ssl-certfile /nonexistent.pem: no such file"


def test_serves_and_sigterm_finishes_slow_request(app_dir: Path) -> None:
    port = free_port()
    proc = lowserve("myapp:handler", "--port", str(port), cwd=app_dir)
    lines = StderrLines(proc)
    lines.wait_for("serving on", 20)
    result: dict[str, object] = {}

    def slow() -> None:
        result["r"] = get(port, "/slow?t=1", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    lines.wait_for("slow request started", 10)
    proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result["r"][0] == 200  # type: ignore[index]
    assert proc.wait(20) == 0
    err = "".join(lines.join())
    assert f"http://127.0.0.1:{port}" in err
    assert "GET /slow?t=1 HTTP/1.1" in err  # the access log is on by default


def test_unix_socket_with_mode_and_stale_file(app_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on
    proc = lowserve("myapp:handler", "--unix", str(path), "--unix-mode", "660", cwd=app_dir)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as c:
                c.connect(str(path))
                c.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(4096):
                    data += chunk
                if data:
                    break
            time.sleep(0.05)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert oct(path.stat().st_mode & 0o777) == oct(0o660)
        # a second server on the same live socket is refused
        r = run_once("myapp:handler", "--unix", str(path), cwd=app_dir)
        assert r.returncode == 3 and "another process listens" in r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert not path.exists()


def test_env_var_configuration(app_dir: Path) -> None:
    port = free_port()
    env = {
        "LOWSERVE_PORT": str(port),
        "LOWSERVE_NO_SERVER_HEADER": "1",
        "LOWSERVE_ACCESS_LOG": "false",
    }
    proc = lowserve("myapp:handler", cwd=app_dir, env=env)
    try:
        wait_serving(port, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = s.recv(65536)
        assert b"\r\nServer:" not in data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert proc.stderr is not None
    assert "GET / HTTP/1.1" not in proc.stderr.read()


def test_bind_fd_inherited_socket(app_dir: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    proc = lowserve(
        "myapp:handler", "--fd", str(sock.fileno()), cwd=app_dir, pass_fds=[sock.fileno()]
    )
    sock.close()
    try:
        wait_serving(port, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_socket_activation_with_listen_fds(app_dir: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    # Put the socket at fd 3 in a launcher that then becomes lowserve (same pid).
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.close(int(sys.argv[1]));"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='web');"
        "os.execv(sys.executable, [sys.executable, '-m', 'lowserve', 'myapp:handler'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, str(sock.fileno())],
        cwd=app_dir,
        pass_fds=[sock.fileno()],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sock.close()
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 10)  # the supervisor logs its sockets once workers serve
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    lines = stderr.join()
    assert any("serving on" in line and "(web)" in line for line in lines), lines


@pytest.mark.skipif(
    not shutil.which("systemd-socket-activate"), reason="needs systemd-socket-activate"
)
def test_systemd_socket_activate(app_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            "systemd-socket-activate",
            "-l",
            f"127.0.0.1:{port}",
            "--fdname=api",
            sys.executable,
            "-m",
            "lowserve",
            "myapp:handler",
        ],
        cwd=app_dir,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _body = get(port, "/activated", timeout=10)
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_sd_notify_ready_status_stopping_watchdog(app_dir: Path, tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    recv = notify_receiver(addr)
    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--workers",
        "2",
        cwd=app_dir,
        env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "400000"},
    )
    try:
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(recv.recv(4096).decode())
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=serving on" in ready and f":{port}" in ready and "2 worker" in ready
        assert f"MAINPID={proc.pid}" in ready
        assert get(port)[0] == 200  # READY came only once it serves
        assert recv.recv(4096).decode() == "WATCHDOG=1"
        proc.send_signal(signal.SIGHUP)
        reload_msgs = [recv.recv(4096).decode() for _ in range(1)]
        while "READY=1" not in reload_msgs[-1]:
            reload_msgs.append(recv.recv(4096).decode())
        assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in reload_msgs)
        proc.send_signal(signal.SIGTERM)
        while (m := recv.recv(4096).decode()) != "STOPPING=1":
            assert m == "WATCHDOG=1"
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        recv.close()


def test_sighup_rolling_restart_without_failed_requests(app_dir: Path) -> None:
    port = free_port()
    with serving(
        "myapp:handler", "--workers", "2", "--no-access-log", cwd=app_dir, port=port
    ) as proc:
        before = wait_for_workers(proc.pid, lambda pids: len(pids) == 2)
        failures: list[str] = []
        stop = threading.Event()
        seen: set[int] = set()

        def client() -> None:
            while not stop.is_set():
                try:
                    status, body = get(port, "/pid")
                    if status != 200:
                        failures.append(str(status))
                    seen.add(int(body))
                except Exception as exc:  # a failed request, never a lost thread
                    failures.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        (app_dir / "myapp.py").write_text(
            APP.replace(
                "VERSION = 1",
                "VERSION = 2  # a new size: a same-size rewrite in the same second keeps the old .pyc",
            )
        )
        proc.send_signal(signal.SIGHUP)

        # Every old worker replaced: the supervisor's children are two new ones.
        # (Pids seen in answers would miss a worker the kernel sent no request to.)
        after = wait_for_workers(proc.pid, lambda pids: len(pids) == 2 and not pids & before)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(10)
        assert not failures, failures[:5]
        assert not after & before
        answers = [json.loads(get(port, "/")[1]) for _ in range(10)]
        assert {a["version"] for a in answers} == {2}  # new code loaded in each worker


def test_killed_worker_is_replaced(app_dir: Path) -> None:
    port = free_port()
    with serving(
        "myapp:handler", "--workers", "2", "--no-access-log", cwd=app_dir, port=port
    ) as proc:
        pids = wait_for_workers(proc.pid, lambda pids: len(pids) == 2)
        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        wait_for_workers(proc.pid, lambda now: len(now) == 2 and victim not in now)
        assert {get(port, "/pid")[0] for _ in range(10)} == {200}


def test_max_requests_recycles_worker(app_dir: Path) -> None:
    port = free_port()
    with serving("myapp:handler", "--max-requests", "5", "--no-access-log", cwd=app_dir, port=port):
        pids = set()
        for _ in range(40):
            status, body = get(port, "/pid")
            assert status == 200
            pids.add(int(body))
            time.sleep(0.05)
        assert len(pids) >= 2


def test_startup_crash_stops_supervisor(app_dir: Path) -> None:
    # The handler resolves in the supervisor, but every worker dies while starting.
    (app_dir / "flaky.py").write_text(
        textwrap.dedent("""
        import sys
        from lowserve import web
        main = sys.modules["__main__"]
        if getattr(main.__spec__, "name", "") == "lowserve.cli.worker":
            raise SystemExit(7)  # fine in the supervisor, fatal in every worker
        async def handler(request):
            return web.Response(text="x")
    """)
    )
    r = run_once("flaky:handler", "--port", str(free_port()), cwd=app_dir)
    assert r.returncode != 0
    assert "during start-up" in r.stderr


def test_proxy_headers(app_dir: Path) -> None:

    port = free_port()
    with serving("myapp:handler", "--proxy-headers", "--no-access-log", cwd=app_dir, port=port):
        _status, body = get(
            port,
            headers="X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: api.example\r\n",
        )
        seen = json.loads(body)
        assert (seen["remote"], seen["scheme"], seen["host"]) == (
            "203.0.113.9",
            "https",
            "api.example",
        )
    port = free_port()
    with serving(
        "myapp:handler",
        "--proxy-headers",
        "--forwarded-allow-ips",
        "10.0.0.1",
        "--no-access-log",
        cwd=app_dir,
        port=port,
    ):
        seen = json.loads(get(port, headers="X-Forwarded-For: 203.0.113.9\r\n")[1])
        assert seen["remote"] == "127.0.0.1"  # not a trusted peer


def test_tls(app_dir: Path, tmp_path: Path) -> None:

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--ssl-certfile",
        str(tmp_path / "server.pem"),
        "--no-access-log",
        cwd=app_dir,
    )
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    try:
        body = tls_get_when_up(port, ctx, "/tls").partition(b"\r\n\r\n")[2].decode()
        assert json.loads(body)["scheme"] == "https"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_curl_against_the_command(app_dir: Path) -> None:
    port = free_port()
    with serving("myapp:handler", "--no-access-log", cwd=app_dir, port=port):
        out = subprocess.run(
            ["curl", "-s", "-i", f"http://127.0.0.1:{port}/c"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        assert out.startswith("HTTP/1.1 200 OK") and '"path": "/c"' in out


def test_a_worker_freezes_what_start_up_made(app_dir: Path) -> None:
    # The worker moves its start-up objects out of the collector's generations
    # (gc.freeze), so a full collection in the first burst no longer walks them.
    (app_dir / "frozen.py").write_text(
        textwrap.dedent(
            """
            import gc
            from lowserve import web

            async def handler(request):
                return web.Response(text=str(gc.get_freeze_count()))
            """
        )
    )
    port = free_port()
    with serving("frozen:handler", "--no-access-log", cwd=app_dir, port=port):
        status, body = get(port)
    assert status == 200
    assert int(body) > 1000  # lowserve's and the handler's modules, at least


def test_reload_picks_up_edit(app_dir: Path) -> None:

    port = free_port()
    with serving("myapp:handler", "--reload", "--no-access-log", cwd=app_dir, port=port):
        assert json.loads(get(port)[1])["version"] == 1
        time.sleep(0.5)
        (app_dir / "myapp.py").write_text(APP.replace("VERSION = 1", "VERSION = 3"))
        deadline = time.monotonic() + 20
        version = 1
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                version = json.loads(get(port, timeout=2)[1])["version"]
                if version == 3:
                    break
            time.sleep(0.2)
        assert version == 3


def test_sigttin_sigttou_change_worker_count(app_dir: Path) -> None:
    port = free_port()
    with serving(
        "myapp:handler", "--workers", "1", "--no-access-log", cwd=app_dir, port=port
    ) as proc:
        wait_for_workers(proc.pid, lambda pids: len(pids) == 1)
        proc.send_signal(signal.SIGTTIN)
        wait_for_workers(proc.pid, lambda pids: len(pids) == 2)
        proc.send_signal(signal.SIGTTOU)
        wait_for_workers(proc.pid, lambda pids: len(pids) == 1)
        assert get(port)[0] == 200


def test_second_sigint_forces_stop(app_dir: Path) -> None:
    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--shutdown-timeout",
        "60",
        "--no-access-log",
        cwd=app_dir,
    )
    wait_serving(port, proc)

    def slow_request() -> None:
        with contextlib.suppress(OSError, IndexError):
            get(port, "/slow?t=30", timeout=40)

    lines = StderrLines(proc)
    slow = threading.Thread(target=slow_request)
    slow.start()
    lines.wait_for("slow request started", 10)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    lines.wait_for("stopping (SIGINT)", 10)  # the stop has begun
    proc.send_signal(signal.SIGINT)  # the second one does not wait for the slow request
    assert proc.wait(15) == 1  # a forced stop is not a clean one
    assert time.monotonic() - started < 10
    slow.join(1)


def test_log_config_and_journald_priorities(app_dir: Path, tmp_path: Path) -> None:

    config = tmp_path / "log.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"f": {"format": "CUSTOM %(name)s %(message)s"}},
                "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f"}},
                "root": {"handlers": ["h"], "level": "INFO"},
            }
        )
    )
    r = run_once("nomodule_xyz:h", "--log-config", str(config), cwd=app_dir)
    assert r.returncode == 2  # the config is read; the handler error is still one line
    port = free_port()
    proc = lowserve("myapp:handler", "--port", str(port), "--log-config", str(config), cwd=app_dir)
    try:
        wait_serving(port, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.stderr is not None
    lines = proc.stderr.read().splitlines()
    assert lines and all(line.startswith("CUSTOM lowserve.") for line in lines), lines
    assert any("stopping (SIGTERM)" in line for line in lines)


def test_journald_lines_carry_priorities() -> None:
    import logging

    from lowserve.cli.logconfig import JournalFormatter

    fmt = JournalFormatter("%(name)s: %(message)s")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "two\nlines", None, None)
    assert fmt.format(record) == "<3>x: two\n<3>lines"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "info", None, None)
    assert fmt.format(record) == "<6>x: info"


def test_tls_client_certificates_required(app_dir: Path, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_cert = ca.issue_cert("client@example.org")
    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--ssl-certfile",
        str(tmp_path / "server.pem"),
        "--ssl-ca-certs",
        str(tmp_path / "ca.pem"),
        "--ssl-cert-reqs",
        "required",
        "--no-access-log",
        cwd=app_dir,
    )

    def context(with_cert: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        if with_cert:
            client_cert.configure_cert(ctx)
        return ctx

    try:
        assert tls_get_when_up(port, context(with_cert=True)).startswith(b"HTTP/1.1 200 ")
        with pytest.raises((ssl.SSLError, OSError)):
            data = tls_get(port, context(with_cert=False))
            assert not data  # TLS 1.3 may report the refusal only on read
            raise ssl.SSLError("no data")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_every_flag_is_in_the_readme() -> None:
    """Each flag is named in README's command reference, or (a server option) marked
    *flag* in its options table."""
    from lowserve.cli.command import main

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = [line for line in readme.splitlines() if "(*flag*)" in line]
    missing = []
    for param in main.params:
        for flag in getattr(param, "opts", []):
            if not flag.startswith("--"):
                continue
            if flag in readme or flag.partition("/")[0] in readme:
                continue
            if any(f"`{param.name}`" in line for line in table):
                continue
            missing.append(flag)
    assert missing == []
