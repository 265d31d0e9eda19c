"""The command as a newcomer meets it: factories, variables, one-line errors, TLS errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from commandline import APP, StderrLines, free_port, get, lowserve, run_once, wait_serving

FACTORIES = textwrap.dedent(
    """
    import os
    from lowserve import web

    async def handler(request):
        return web.Response(text=str(os.getpid()))

    async def make():
        with open(os.environ["MARKS"], "a") as f:
            f.write(f"{os.getpid()}\\n")
        return handler

    def needs_args(config):
        return handler

    def returns_int():
        return 42

    def sync_factory():
        return handler
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "factories.py").write_text(FACTORIES)
    (tmp_path / "syntax.py").write_text("def broken(:\n    pass\n")
    return tmp_path


def test_async_factory_runs_once_per_worker_never_in_the_supervisor(
    app: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    port = free_port()
    proc = lowserve(
        "factories:make",
        "--factory",
        "--workers",
        "2",
        "--port",
        str(port),
        "--no-access-log",
        cwd=app,
        env={"MARKS": str(marks)},  # (stderr is read only at the end: keep it short)
    )
    try:
        wait_serving(port, proc)
        served: set[int] = set()
        deadline = time.monotonic() + 20
        while len(served) < 2 and time.monotonic() < deadline:
            served.add(int(get(port)[1]))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    called = [int(line) for line in marks.read_text().split()]
    assert proc.pid not in called  # never in the supervisor
    assert len(called) == 2 and served <= set(called)
    err = proc.stderr.read() if proc.stderr else ""
    assert "was destroyed but it is pending" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["factories:needs_args", "--factory"],
            "takes arguments (config); a --factory is called with none",
        ),
        (
            ["factories:returns_int", "--factory"],
            "the factory 'factories:returns_int' returned an int, not an async callable",
        ),
        (["factories:sync_factory"], "if it returns the handler, add --factory"),
        (["myapp:handler", "--keepalive-timeout", "-1"], "-1"),
        (["myapp:handler", "--max-line-size", "0"], "0"),
        (["myapp:handler", "--max-headers", "-1"], "-1"),
        (["myapp:handler", "--client-max-size", "-1"], "-1"),
        (["myapp:handler", "--header-read-timeout", "-3"], "-3"),
        (["myapp:handler", "--limit-concurrency", "-2"], "-2"),
        (["myapp:handler", "--app-dir", "/nonexistent"], "/nonexistent"),
        (["myapp:handler", "--bind", "http://127.0.0.1:8080"], "without a scheme"),
        (["myapp:handler", "--bind", ":8080"], "give a host"),
        (
            ["myapp:handler", "--ssl-certfile", "x.pem", "--ssl-cert-reqs", "required"],
            "needs --ssl-ca-certs",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(app: Path, args: list[str], message: str) -> None:
    result = run_once(*args, "--check", cwd=app)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 3 and lines[-1].startswith("Error: ")  # click: usage, hint, error


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("myapp:handlr", "Error: module 'myapp' has no attribute 'handlr'"),
        ("nosuchmodule_xyz:handler", "Error: cannot import module 'nosuchmodule_xyz'"),
    ],
)
def test_a_failed_start_is_the_error_line_alone(app: Path, spec: str, message: str) -> None:
    """Serving (not --check) a handler that cannot load: one line, exit 2; no start-up
    line before it, and no 'stopping (SIGTERM)' that nobody sent after it."""
    result = run_once(spec, "--port", str(free_port()), cwd=app)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_syntax_error_shows_the_users_frames_only(app: Path) -> None:
    result = run_once("syntax:handler", "--check", cwd=app)
    assert result.returncode == 2
    assert "syntax.py" in result.stderr and "SyntaxError" in result.stderr
    assert "lowserve" not in result.stderr.replace("'syntax", "").split("raised")[1]
    assert "click" not in result.stderr and "importlib" not in result.stderr
    assert len(result.stderr.splitlines()) < 12


def test_check_describes_a_callable_instance_once(app: Path) -> None:
    result = run_once("myapp:endpoint", "--check", cwd=app)
    assert result.stdout.strip() == "ok: myapp:endpoint is an Endpoint"


def test_log_config_ini_and_bad_file(app: Path, tmp_path: Path) -> None:
    ini = tmp_path / "log.ini"
    ini.write_text(
        textwrap.dedent("""
        [loggers]
        keys=root
        [handlers]
        keys=h
        [formatters]
        keys=f
        [logger_root]
        level=INFO
        handlers=h
        [handler_h]
        class=StreamHandler
        formatter=f
        args=(sys.stderr,)
        [formatter_f]
        format=INI %(message)s
    """)
    )
    assert run_once("myapp:handler", "--check", "--log-config", str(ini), cwd=app).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run_once("myapp:handler", "--check", "--log-config", str(bad), cwd=app)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "bad.json" in result.stderr


def test_unix_path_that_is_a_regular_file(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("x")
    result = run_once("myapp:handler", "--unix", str(path), cwd=app)
    assert result.returncode == 3
    assert "exists and is not a socket" in result.stderr


def test_every_flag_has_its_own_variable_shown_in_help(app: Path) -> None:
    from lowserve.cli.command import main

    help_text = run_once("--help", cwd=app).stdout
    for param in main.params:
        if param.name in ("version", "help") or not hasattr(param, "opts"):
            continue
        long = next((o for o in param.opts if o.startswith("--")), None)
        if long is None:  # the HANDLER argument
            assert param.envvar == "LOWSERVE_HANDLER"
            continue
        name = "LOWSERVE_" + long[2:].replace("-", "_").upper()
        envvar = param.envvar
        assert envvar is not None, long
        if not isinstance(envvar, str):
            envvar = envvar[0]
        assert envvar == name, long
        assert name in help_text.replace("\n", " ").replace("  ", " ") or name in help_text, name


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"LOWSERVE_BIND": "127.0.0.1:{port}"}, "http://127.0.0.1:{port}"),
        ({"LOWSERVE_BIND": "127.0.0.1:{port}, 127.0.0.1:{port2}"}, "http://127.0.0.1:{port2}"),
        (
            {"LOWSERVE_PORT": "{port}", "LOWSERVE_HANDLER": "myapp:handler"},
            "http://127.0.0.1:{port}",
        ),
        (
            {"LOWSERVE_UNIX": "{tmp}/s.sock", "LOWSERVE_BIND": "127.0.0.1:{port}"},
            "unix:{tmp}/s.sock",
        ),
    ],
)
def test_variables_take_effect(app: Path, tmp_path: Path, env: dict[str, str], expect: str) -> None:
    port, port2 = free_port(), free_port()
    values = {k: v.format(port=port, port2=port2, tmp=tmp_path) for k, v in env.items()}
    args = [] if "LOWSERVE_HANDLER" in values else ["myapp:handler"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lowserve", *args],
        cwd=app,
        env={**os.environ, **values},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stderr = StderrLines(proc)
    try:
        stderr.wait_for("serving on", 20)  # logged once every worker serves
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert expect.format(port=port, port2=port2, tmp=tmp_path) in "".join(stderr.join())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    other = ca.issue_cert("other")
    out = {
        "cert": d / "cert.pem",
        "key": d / "key.pem",
        "other_key": d / "other.pem",
    }
    cert.cert_chain_pems[0].write_to_path(str(out["cert"]))
    cert.private_key_pem.write_to_path(str(out["key"]))
    other.private_key_pem.write_to_path(str(out["other_key"]))
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    out["enc_key"] = d / "enc.pem"
    out["enc_key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    out["pw"] = d / "pw.txt"
    out["pw"].write_text("secret\n")
    return out


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("encrypted-no-password", "is encrypted: give --ssl-keyfile-password-file"),
        ("wrong-password", "wrong password"),
        ("mismatch", "does not match the certificate"),
        ("swapped", "are the certificate and key swapped?"),
        ("cipher", "no cipher matches"),
    ],
)
def test_tls_errors_name_the_file_and_the_cause(
    app: Path, pki: dict[str, Path], kind: str, message: str
) -> None:
    args = {
        "encrypted-no-password": ["--ssl-certfile", pki["cert"], "--ssl-keyfile", pki["enc_key"]],
        "wrong-password": [
            "--ssl-certfile",
            pki["cert"],
            "--ssl-keyfile",
            pki["enc_key"],
            "--ssl-keyfile-password",
            "nope",
        ],
        "mismatch": ["--ssl-certfile", pki["cert"], "--ssl-keyfile", pki["other_key"]],
        "swapped": ["--ssl-certfile", pki["key"], "--ssl-keyfile", pki["cert"]],
        "cipher": [
            "--ssl-certfile",
            pki["cert"],
            "--ssl-keyfile",
            pki["key"],
            "--ssl-ciphers",
            "NO-SUCH-CIPHER",
        ],
    }[kind]
    result = run_once("myapp:handler", "--check", *map(str, args), cwd=app)
    assert result.returncode == 3
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tls_password_file_and_https_in_the_start_line(app: Path, pki: dict[str, Path]) -> None:

    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--ssl-certfile",
        str(pki["cert"]),
        "--ssl-keyfile",
        str(pki["enc_key"]),
        "--ssl-keyfile-password-file",
        str(pki["pw"]),
        cwd=app,
        stdin=subprocess.DEVNULL,
    )
    stderr = StderrLines(proc)
    try:
        stderr.wait_for("serving on", 30)  # the supervisor logs its sockets once workers serve
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    lines = stderr.join()
    assert any(f"serving on https://127.0.0.1:{port}" in ln for ln in lines), lines


def test_reload_watches_python_files_only_and_one_ctrl_c_stops_it(app: Path) -> None:
    import json

    from commandline import APP as APP_TEXT

    port = free_port()
    proc = lowserve("myapp:handler", "--reload", "--port", str(port), "--no-access-log", cwd=app)
    try:
        wait_serving(port, proc)
        first = json.loads(get(port)[1])["pid"]
        (app / "app.log").write_text("a log line\n")  # not *.py: no restart
        (app / "data.sqlite").write_bytes(b"\0" * 10)
        time.sleep(2.5)  # past watchfiles' debounce
        assert json.loads(get(port)[1])["pid"] == first
        (app / "myapp.py").write_text(APP_TEXT.replace("VERSION = 1", "VERSION = 22"))
        deadline = time.monotonic() + 20
        version = 1
        while time.monotonic() < deadline and version != 22:
            try:
                version = json.loads(get(port, timeout=2)[1])["version"]
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        assert version == 22
    finally:
        proc.send_signal(signal.SIGINT)  # what one Ctrl-C sends to the foreground process
        code = proc.wait(20)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 0, err
    assert "SIGINT again" not in err and "Traceback" not in err


@pytest.mark.parametrize("entry", ["not-an-ip", "10.0.0.0/33"])
def test_bad_forwarded_allow_ips_is_one_line_and_exit_2(app: Path, entry: str) -> None:
    result = run_once("myapp:handler", "--check", "--forwarded-allow-ips", entry, cwd=app)
    assert result.returncode == 2
    assert f"{entry!r} is not an address, a network" in result.stderr
    assert "Traceback" not in result.stderr


def test_proxy_headers_from_a_unix_socket_peer_by_default(app: Path, tmp_path: Path) -> None:
    import json
    import socket

    path = str(tmp_path / "app.sock")
    proc = lowserve("myapp:handler", "--unix", path, "--proxy-headers", "--no-access-log", cwd=app)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(5)
                sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        with sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"
                b"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert body["remote"] == "203.0.113.7" and body["scheme"] == "https"


def test_a_failed_reload_tells_systemd_the_old_workers_still_serve(
    app: Path, tmp_path: Path
) -> None:
    from commandline import get, notify_receiver

    addr = str(tmp_path / "notify.sock")
    recv = notify_receiver(addr)
    port = free_port()
    proc = lowserve(
        "myapp:handler",
        "--port",
        str(port),
        "--no-access-log",
        cwd=app,
        env={"NOTIFY_SOCKET": addr},
    )
    try:
        while "READY=1" not in recv.recv(4096).decode():
            pass
        (app / "myapp.py").write_text("def broken(:\n")  # the new code cannot load
        proc.send_signal(signal.SIGHUP)
        messages = [recv.recv(4096).decode()]
        while "READY=1" not in messages[-1]:
            messages.append(recv.recv(4096).decode())
        assert messages[0].startswith("RELOADING=1")
        assert "STATUS=reload failed: a new worker exited with code 2" in messages[-1]
        assert "the old workers still serve" in messages[-1]
        assert get(port)[0] == 200  # and they do
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        recv.close()


async def test_refusals_are_warned_once_per_interval_with_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import logging

    from lowserve import web

    from conftest import exchange, serve

    async def ok(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    caplog.set_level(logging.DEBUG, "lowserve")
    async with serve(ok, limit_concurrency=1, header_read_timeout=0.2) as s:
        held = [await asyncio.open_connection("127.0.0.1", s.port)]
        await asyncio.sleep(0.05)
        for _ in range(3):  # over the limit: 503, one WARNING for the three
            out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 503 ")
        held[0][1].write(b"GET / HTTP/1.1\r\n")  # a head that never ends: 408
        assert (await asyncio.wait_for(held[0][0].read(), 5)).startswith(b"HTTP/1.1 408 ")
        held[0][1].close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "--limit-concurrency 1 reached" in w]) == 1
    assert len([w for w in warnings if "header_read_timeout: 408" in w]) == 1


def _gone(pid: int) -> bool:
    """Whether *pid* has exited (a zombie, not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("reload", [True, False], ids=["reload", "supervisor"])
def test_stops_on_sigint_and_sigterm_when_started_with_sigint_ignored(
    app: Path, sig: signal.Signals, reload: bool
) -> None:
    """A background job (``&``, nohup) inherits SIGINT ignored: the command (with
    --reload: the reloader, its child and the workers) stops on SIGINT all the same,
    and on SIGTERM, leaving no process behind."""
    from commandline import worker_pids

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    port = free_port()
    args = ["myapp:handler", "--port", str(port), "--no-access-log"]
    proc = lowserve(*args, *(["--reload"] if reload else []), cwd=app, preexec_fn=ignore_sigint)
    family: set[int] = set()
    try:
        wait_serving(port, proc)
        family = worker_pids(proc.pid)
        assert len(family) == 1  # the reloader's child, or the supervisor's one worker
        if reload:
            family |= worker_pids(next(iter(family)))
        proc.send_signal(sig)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:  # (what ignored SIGINT used to leave running)
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        for pid in family:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 0, err
    assert "Traceback" not in err
    assert [pid for pid in family if not _gone(pid)] == []
    with pytest.raises(ConnectionRefusedError):
        get(port, timeout=2)


def test_reload_a_second_sigint_forces_the_stop_and_leaves_nothing(app: Path) -> None:
    """While --reload's child drains a slow request, a second Ctrl-C goes on to it: the
    workers are killed (exit code 1, as without --reload) and no process is left."""
    import threading

    from commandline import worker_pids

    port = free_port()
    proc = lowserve("myapp:handler", "--reload", "--port", str(port), "--no-access-log", cwd=app)
    stderr = StderrLines(proc)
    family: set[int] = set()

    def slow_request() -> None:
        with contextlib.suppress(OSError, IndexError):  # the killed worker answers nothing
            get(port, "/slow?t=60", timeout=30)

    slow = threading.Thread(target=slow_request, daemon=True)
    try:
        wait_serving(port, proc)
        [child] = worker_pids(proc.pid)
        family = {child, *worker_pids(child)}
        slow.start()
        stderr.wait_for("slow request started", 20)
        proc.send_signal(signal.SIGINT)
        stderr.wait_for("stopping (SIGTERM)", 20)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(20)
        for pid in family:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    lines = stderr.join()
    assert time.monotonic() - started < 10
    assert code == 1, lines
    assert any("SIGINT again: killing workers" in line for line in lines), lines
    assert not any("Traceback" in line for line in lines), lines
    assert [pid for pid in family if not _gone(pid)] == []


def test_reload_watches_a_path_apps_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--reload some/dir/app.py:handler`` watches some/dir, not the whole current
    directory; --app-dir is watched too when given; a module handler is unchanged
    (--app-dir, default ``.``, holds its package)."""
    from lowserve.cli.command import _watched_dirs
    from lowserve.cli.config import Config

    (tmp_path / "some" / "dir").mkdir(parents=True)
    (tmp_path / "some" / "dir" / "app.py").write_text(APP)
    (tmp_path / "lib").mkdir()
    (tmp_path / "myapp.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    app_folder = str(tmp_path / "some" / "dir")
    assert _watched_dirs(Config(handler="some/dir/app.py:handler")) == [app_folder]
    assert _watched_dirs(Config(handler="./some/dir/app.py:handler")) == [app_folder]
    assert _watched_dirs(Config(handler="some/dir/app.py:handler", app_dir="lib")) == [
        str(tmp_path / "lib"),
        app_folder,
    ]
    assert _watched_dirs(Config(handler="app.py:handler")) == [str(tmp_path)]
    assert _watched_dirs(Config(handler="myapp:handler")) == [str(tmp_path)]
    assert _watched_dirs(Config(handler="some/dir/app.py:handler", reload_dirs=["lib"])) == [
        str(tmp_path / "lib")
    ]


OTHER_SERVERS_FLAGS = [
    # uvicorn's name, lowserve's, a value
    ("--timeout-keep-alive", "--keepalive-timeout", "5"),
    ("--timeout-graceful-shutdown", "--shutdown-timeout", "30"),
    ("--limit-max-requests", "--max-requests", "1000"),
    ("--uds", "--unix", "/tmp/app.sock"),
    # gunicorn's
    ("-w", "--workers", "4"),
    ("-b", "--bind", "0.0.0.0:8000"),
    ("--keep-alive", "--keepalive-timeout", "5"),
    ("--graceful-timeout", "--shutdown-timeout", "30"),
    ("--worker-connections", "--limit-concurrency", "1000"),
    ("--limit-request-line", "--max-line-size", "4094"),
    ("--limit-request-fields", "--max-headers", "100"),
    ("--limit-request-field_size", "--max-field-size", "8190"),
    ("--limit-request-field-size", "--max-field-size", "8190"),
    ("--certfile", "--ssl-certfile", "cert.pem"),
    ("--keyfile", "--ssl-keyfile", "key.pem"),
    ("--ca-certs", "--ssl-ca-certs", "ca.pem"),
    ("--ciphers", "--ssl-ciphers", "ECDHE+AESGCM"),
    ("--access-logformat", "--access-log-format", "%a"),
    ("--log-config-json", "--log-config", "log.json"),
]


@pytest.mark.parametrize(("theirs", "ours", "value"), OTHER_SERVERS_FLAGS)
@pytest.mark.parametrize("spelling", ["separate", "joined"])
def test_uvicorns_and_gunicorns_flag_names_get_lowserves(
    theirs: str, ours: str, value: str, spelling: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: the one-line error names lowserve's flag (a real one), exit code 2."""
    from lowserve.cli.command import main

    assert any(ours in p.opts for p in main.params)
    if spelling == "separate":
        args = [theirs, value]
    else:
        args = [theirs + value] if len(theirs) == 2 else [f"{theirs}={value}"]
    with pytest.raises(SystemExit) as exit_:
        main.main(["myapp:handler", *args], prog_name="lowserve")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"Error: No such option: {theirs} (lowserve calls it {ours}; see lowserve --help)\n"
    )


def test_another_servers_flag_over_the_real_command(app: Path) -> None:
    """The command as typed: one line on stderr, nothing on stdout, exit code 2; an
    unknown flag no other server spells so keeps click's own line."""
    result = run_once("myapp:handler", "--timeout-keep-alive", "5", cwd=app)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "Error: No such option: --timeout-keep-alive (lowserve calls it "
        "--keepalive-timeout; see lowserve --help)\n"
    )
    result = run_once("myapp:handler", "--no-such-flag", cwd=app)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--no-such-flag" in result.stderr
    assert "calls it" not in result.stderr and "(see lowserve --help)" in result.stderr


def _generated() -> list[Any]:
    from lowserve.cli.config import Config
    from lowserve.options import ServerOptions
    from lowserve.optionspec import specs

    return [s for cls in (Config, ServerOptions) for s in specs(cls) if s.cli]


def test_the_generated_flags_are_the_specs() -> None:
    """Each spec marked for the command is a flag: its spelling, variables, default, help."""
    import click

    from lowserve.cli.command import main

    params = {p.name: p for p in main.params if isinstance(p, click.Option)}
    for spec in _generated():
        param = params[spec.name]
        assert [*param.opts, *param.secondary_opts] == spec.flags.split("/")
        envvar = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        assert tuple(envvar) == spec.variables and param.help == spec.help
        default = spec.separator.join(spec.default) if spec.separator else spec.default
        assert param.default == default, spec.name


@pytest.mark.parametrize(
    "spec", [s for s in _generated() if s.minimum is not None], ids=lambda s: s.name
)
def test_a_bound_is_one_check_for_the_flag_and_the_dataclass(
    spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: below its minimum, the flag is one line naming it (exit 2, click's
    words) and the dataclass a ValueError naming the field, both from spec.problem."""
    from lowserve.cli.command import main
    from lowserve.cli.config import Config
    from lowserve.options import ServerOptions
    from lowserve.optionspec import specs

    below = spec.minimum - 1
    while below in spec.also:  # an exception to the range (client_max_fields' -1)
        below -= 1
    with pytest.raises(SystemExit) as exit_:
        main.main(["myapp:handler", spec.flags, str(below)], prog_name="lowserve")
    assert exit_.value.code == 2
    shown = float(below) if spec.kind is float else below
    variables = ", ".join(f"'{v}'" for v in spec.variables)
    assert capsys.readouterr().err == (
        f"Error: Invalid value for '{spec.flags}' (env var: {variables}): "
        f"{shown} is not in the range {spec.range_text()}. (see lowserve --help)\n"
    )
    kwargs: dict[str, Any] = {spec.name: below}
    with pytest.raises(ValueError, match=rf"^{spec.name}: {below} is not in the range "):
        if spec in specs(ServerOptions):
            ServerOptions(**kwargs)
        else:
            Config("myapp:handler", **kwargs)


def test_an_exception_to_a_bound_reaches_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """A spec accepting -1 outside its range (as "no limit"): the generated flag accepts
    it too, says so in --help, and refuses -2 with the same words."""
    import dataclasses

    import click

    from lowserve.cli.command import _flags
    from lowserve.optionspec import check, option

    @dataclasses.dataclass
    class Limits:
        fields: int = option(1000, "Most fields (-1: no limit).", minimum=0, also=(-1,))

        def __post_init__(self) -> None:
            check(self)

    @click.command()
    @_flags(Limits)
    def cmd(fields: int) -> None:
        click.echo(Limits(fields).fields)

    assert cmd.main(["--fields", "-1"], standalone_mode=False) is None
    assert capsys.readouterr().out == "-1\n"
    with pytest.raises(click.BadParameter, match=r"-2 is not in the range x>=0 or -1\."):
        cmd.main(["--fields", "-2"], standalone_mode=False)
    with pytest.raises(ValueError, match=r"^fields: -2 is not in the range x>=0 or -1$"):
        Limits(-2)
    help_text = cmd.get_help(click.Context(cmd))
    assert "Most fields (-1: no limit).  [x>=0 or -1]" in help_text
