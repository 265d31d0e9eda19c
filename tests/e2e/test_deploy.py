"""deploy/: docs/deployment.md's commands and the systemd units they install, verified
in a scratch root; nginx's site and HAProxy's config in front of two instances.

The files are used as shipped, with only their paths rewritten for this checkout
(the binary, the sockets, nginx's own files and port).
"""

from __future__ import annotations

import configparser
import contextlib
import grp
import json
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from commandline import APP, StderrLines, free_port, lowserve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LOWSERVE = shutil.which("lowserve", path=str(Path(sys.executable).parent)) or "lowserve"
pytestmark = pytest.mark.timeout(90)
Where = TypeVar("Where")  # where an instance listens: a socket path or a port


VENV_LOWSERVE = "/opt/myapp/venv/bin/lowserve"  # where the units run lowserve from
SYSTEMD_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
    None,
)


def _unit(path: Path) -> configparser.ConfigParser:
    """A unit file's sections (a key given twice keeps its last value)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def _page_commands() -> list[list[str]]:
    """The shell commands in docs/deployment.md's code blocks, in order, each split
    into words (lines split at ``&&`` and ``;``, comments dropped)."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    commands: list[list[str]] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            command: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word not in ("&&", ";"):
                    command.append(word)
                elif command:
                    commands.append(command)
                    command = []
    return commands


class _Setup:
    """What docs/deployment.md's commands do, played into *root* instead of ``/``: the
    files it copies (each must be one of deploy/'s), the virtual environments it
    makes, whether it runs systemd-sysusers, and the units it enables."""

    def __init__(self, root: Path) -> None:
        self.root, self.venvs, self.units = root, list[str](), list[Path]()
        self.enabled, self.sysusers = list[str](), False
        for command in _page_commands():
            self.play(command)

    def play(self, command: list[str]) -> None:
        match command:
            case ["python3", "-m", "venv", path]:
                self.venvs.append(path)
            case ["cp", *sources, dest]:
                for source in sources:
                    assert source.startswith("deploy/") and (ROOT / source).is_file(), source
                    target = self.root / dest.lstrip("/")
                    if dest.endswith("/"):
                        target = target / Path(source).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ROOT / source, target)
                    if target.parent == self.root / "etc/systemd/system":
                        self.units.append(target)
            case ["systemd-sysusers"]:
                self.sysusers = True
            case ["systemctl", "enable", "--now", *names]:
                self.enabled += names

    def unit_file(self, name: str) -> Path:
        """The copied file that *name* (``lowserve@1`` → ``lowserve@.service``) loads."""
        name = name if "." in name else f"{name}.service"
        return self.root / "etc/systemd/system" / re.sub(r"@[^.]+\.", "@.", name)


def test_the_deployment_page_copies_deploy_files_and_runs_lowserve_from_its_venv(
    tmp_path: Path,
) -> None:
    """The page's commands as written: every file it copies is in deploy/, every unit it
    enables was copied before, each unit runs lowserve from the venv the page makes, as
    a user the shipped sysusers.d file makes (and a group it makes, or www-data: nginx's
    on Debian, as the page says)."""
    setup = _Setup(tmp_path)
    assert setup.venvs == [VENV_LOWSERVE.removesuffix("/bin/lowserve")]
    assert {u.name for u in setup.units} == {
        "lowserve.service",
        "lowserve.socket",
        "lowserve@.service",
    }
    assert setup.enabled and all(setup.unit_file(n) in setup.units for n in setup.enabled)
    sysusers = (tmp_path / "etc/sysusers.d/lowserve.conf").read_text()
    made = re.findall(r"^[ug] (\S+)", sysusers, re.M)
    assert setup.sysusers and made == ["lowserve"]
    for path in setup.units:
        if path.suffix != ".service":
            continue
        service = _unit(path)["Service"]
        for key in ("ExecStartPre", "ExecStart"):
            assert shlex.split(service[key])[0] == VENV_LOWSERVE, (path.name, key)
        assert service["User"] in made, path.name
        assert service["Group"] in [*made, "www-data"], path.name
        # the unit's comment says where the page puts lowserve
        assert VENV_LOWSERVE.removesuffix("/bin/lowserve") in path.read_text().split("[Unit]")[0]


def _verify(root: Path, *units: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lowserve" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.skipif(
    not (shutil.which("systemd-analyze") and shutil.which("systemd-sysusers") and SYSTEMD_UNITS),
    reason="needs systemd-analyze, systemd-sysusers and systemd's own units",
)
def test_the_deployment_page_in_a_scratch_root_passes_systemd_analyze_verify(
    tmp_path: Path,
) -> None:
    """The page's commands played into a scratch root holding systemd's units, Debian's
    www-data, the app and an executable where the page installs lowserve: the units it
    enables pass ``systemd-analyze verify --root`` (which checks that each command
    exists there), and every User=/Group= exists after its systemd-sysusers.
    lowserve.service alone, without its socket unit, passes too."""
    assert SYSTEMD_UNITS is not None
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nwww-data:x:33:\n")
    (root / "srv/myapp").mkdir(parents=True)
    (root / "srv/myapp/myapp.py").write_text(APP)
    for command in (VENV_LOWSERVE, "/bin/kill"):
        fake = root / command.lstrip("/")
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    setup = _Setup(root)
    assert setup.sysusers
    subprocess.run(["systemd-sysusers", f"--root={root}"], check=True, timeout=60)
    users = {ln.split(":")[0] for ln in (root / "etc/passwd").read_text().splitlines()}
    groups = {ln.split(":")[0] for ln in (root / "etc/group").read_text().splitlines()}
    for path in setup.units:
        if path.suffix == ".service":
            assert _unit(path)["Service"]["User"] in users
            assert _unit(path)["Service"]["Group"] in groups
    names = [setup.unit_file(n).name if "@" not in n else f"{n}.service" for n in setup.enabled]
    for name in names:
        if "@" in name:  # an instance of a template, as systemctl enable makes it
            (root / "etc/systemd/system" / name).symlink_to(setup.unit_file(name).name)
    _verify(root, *names)
    (root / "etc/systemd/system/lowserve.socket").unlink()
    _verify(root, "lowserve.service")


def _nginx_conf(tmp: Path, port: int, socks: list[Path], user: str | None = None) -> Path:
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("/run/lowserve/1.sock", str(socks[0])).replace(
        "/run/lowserve/2.sock", str(socks[1])
    )
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
{f"user {user} {user};" if user else "master_process off;"}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
{site}
}}
"""
    )
    return conf


def _get(port: int, path: str = "/", source: str = "127.0.0.1") -> dict[str, object]:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    answer: dict[str, object] = json.loads(body)
    return answer


def _restart_under_load(
    port: int,
    apps: list[subprocess.Popen[str]],
    socks: Sequence[Where],
    start: Callable[[Where], subprocess.Popen[str]],
    which: list[int],
    *,
    settle: float,
) -> tuple[int, list[str]]:
    """8 clients that never retry keep *port* busy while the instances in *which* are
    stopped (SIGTERM, exit 0) and started again, one after another, *settle* seconds
    apart. Returns the requests answered and the failures."""
    failures: list[str] = []
    ok = [0]
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                _get(port, "/slow?t=0.02")
                ok[0] += 1
            except (OSError, AssertionError, ValueError) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for i in which:
            apps[i].send_signal(signal.SIGTERM)
            assert apps[i].wait(20) == 0
            apps[i] = start(socks[i])
            time.sleep(settle)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    return ok[0], failures


@pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx")
def test_nginx_in_front_of_two_instances(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    socks = [tmp_path / "1.sock", tmp_path / "2.sock"]

    def start(sock: Path) -> subprocess.Popen[str]:
        return lowserve(
            "myapp:handler",
            "--unix",
            str(sock),
            "--unix-mode",
            "660",
            "--proxy-headers",
            "--no-access-log",
            cwd=tmp_path,
        )

    apps = [start(s) for s in socks]
    port = free_port()
    nginx = subprocess.Popen(["nginx", "-c", str(_nginx_conf(tmp_path, port, socks))])
    try:
        deadline = _wait_for_files(socks)
        pids: set[object] = set()
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                body = _get(port, source="127.0.0.7")
            except (OSError, AssertionError):
                time.sleep(0.05)
                continue
            pids.add(body["pid"])
            # the client's address comes through X-Forwarded-For from a UNIX-socket peer
            assert body["remote"] == "127.0.0.7" and body["host"] == "example.test"
        assert len(pids) == 2  # requests are spread over both instances

        # Restart one instance under load: a client that does not retry sees no failure.
        ok, failures = _restart_under_load(port, apps, socks, start, [0], settle=1.5)
        print(f"nginx, one instance restarted under load: {ok} ok, {len(failures)} failed")
        assert failures == [] and ok > 50
    finally:
        _stop_all(nginx, apps)


def _wait_for_files(paths: list[Path], timeout: float = 20) -> float:
    """Wait until every socket file in *paths* exists; return the deadline, for the
    waits that follow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(p.exists() for p in paths):
        time.sleep(0.05)
    return deadline


def _stop_all(proxy: subprocess.Popen[bytes], apps: list[subprocess.Popen[str]]) -> None:
    """Stop the proxy, then each lowserve instance (SIGTERM: a graceful stop)."""
    proxy.terminate()
    proxy.wait(10)
    for app in apps:
        app.send_signal(signal.SIGTERM)
        app.wait(20)


def _can_switch_to(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return os.geteuid() == 0


@pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx")
@pytest.mark.skipif(not _can_switch_to("www-data"), reason="needs root and a www-data user")
def test_nginx_workers_as_www_data_reach_a_660_socket_of_their_group() -> None:
    """The deployment page's permission advice, with nginx's workers as www-data (as
    Debian runs them): lowserve with group www-data and --unix-mode 660 is reachable;
    an instance left at the default mode (0755 under umask 022) is refused EACCES, and
    nginx sends its requests to the reachable one."""
    run_dir = Path(tempfile.mkdtemp(prefix="lowserve-run-"))  # /tmp: www-data can get in
    try:
        run_dir.chmod(0o711)
        (run_dir / "myapp.py").write_text(APP)
        socks = [run_dir / "1.sock", run_dir / "2.sock"]
        modes = [["--unix-mode", "660"], []]
        apps = [
            lowserve(
                "myapp:handler",
                "--unix",
                str(sock),
                *mode,
                "--no-access-log",
                cwd=run_dir,
                group="www-data",
            )
            for sock, mode in zip(socks, modes, strict=True)
        ]
        port = free_port()
        nginx = subprocess.Popen(
            ["nginx", "-c", str(_nginx_conf(run_dir, port, socks, user="www-data"))]
        )
        try:
            deadline = _wait_for_files(socks)
            assert [stat.S_IMODE(s.stat().st_mode) for s in socks] == [0o660, 0o755]
            assert {grp.getgrgid(s.stat().st_gid).gr_name for s in socks} == {"www-data"}
            pids: set[object] = set()
            while time.monotonic() < deadline and len(pids) < 1:
                with contextlib.suppress(OSError, AssertionError):
                    pids.add(_get(port)["pid"])
            pids |= {_get(port)["pid"] for _ in range(10)}
            assert len(pids) == 1  # one instance (its worker) answered every request
            log = (run_dir / "error.log").read_text()
            assert f"connect() to unix:{socks[1]} failed (13: Permission denied)" in log, log
            assert f"unix:{socks[0]} failed" not in log
        finally:
            _stop_all(nginx, apps)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx")
def test_websocket_through_nginx(tmp_path: Path) -> None:
    import asyncio

    import websockets

    (tmp_path / "chatapp.py").write_text((ROOT / "examples" / "chat.py").read_text())
    socks = [tmp_path / "1.sock", tmp_path / "2.sock"]
    apps = [
        lowserve("chatapp:handler", "--unix", str(s), "--no-access-log", cwd=tmp_path)
        for s in socks
    ]
    port = free_port()
    nginx = subprocess.Popen(["nginx", "-c", str(_nginx_conf(tmp_path, port, socks))])
    try:
        _wait_for_files(socks)
        time.sleep(0.3)

        async def talk() -> str:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
                await ws.send("hello through nginx")
                while True:
                    msg = await asyncio.wait_for(ws.recv(), 10)
                    if "hello through nginx" in str(msg):
                        return str(msg)

        assert "hello through nginx" in asyncio.run(talk())
    finally:
        _stop_all(nginx, apps)


@pytest.mark.skipif(not shutil.which("haproxy"), reason="needs haproxy")
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_haproxy_in_front_of_two_instances(tmp_path: Path, mode: str) -> None:
    """The shipped config, one half at a time. HTTP mode: UNIX sockets, health checks,
    the client's address from ``option forwardfor`` (a UNIX-socket peer is trusted).
    TCP mode: TCP ports, the client's address from the PROXY protocol v2 (the peer is
    HAProxy). In both, each instance restarted in turn under load loses no request (a
    refused connect is retried on the other server: retries + option redispatch)."""
    (tmp_path / "myapp.py").write_text(APP)
    front = free_port()
    http_half, tcp_half = (DEPLOY / "haproxy.cfg").read_text().split("frontend fe_tcp")
    where: list[Path | int]
    if mode == "http":
        where = [tmp_path / "1.sock", tmp_path / "2.sock"]
        text = http_half.replace("bind :80", f"bind 127.0.0.1:{front}")
        for i, sock in enumerate(where, 1):
            text = text.replace(f"unix@/run/lowserve/{i}.sock", f"unix@{sock}")
        flags = ["--proxy-headers"]
    else:
        where = [free_port(), free_port()]
        text = http_half.split("frontend fe_http")[0] + "frontend fe_tcp" + tcp_half
        text = text.replace("bind :8443", f"bind 127.0.0.1:{front}")
        for i, port in enumerate(where, 1):
            text = text.replace(f"127.0.0.1:808{i}", f"127.0.0.1:{port}")
        assert "send-proxy-v2" in text
        flags = ["--proxy-protocol"]
    assert "/run/lowserve" not in text and ":808" not in text
    cfg = tmp_path / "haproxy.cfg"
    # (the shipped maxconn starts under a 20,000-descriptor limit in its own test)
    cfg.write_text(re.sub(r"maxconn \d+", "maxconn 200", text))

    def start(at: Path | int) -> subprocess.Popen[str]:
        bind = ["--unix", str(at)] if isinstance(at, Path) else ["--port", str(at)]
        return lowserve("myapp:handler", *bind, *flags, "--no-access-log", cwd=tmp_path)

    apps = [start(at) for at in where]
    haproxy = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        pids: set[object] = set()
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                body = _get(front, source="127.0.0.8")
            except (OSError, AssertionError, ValueError):
                time.sleep(0.05)
                continue
            pids.add(body["pid"])
            assert body["remote"] == "127.0.0.8"
        assert len(pids) == 2

        # restart each instance in turn, each back up and seen healthy (checks: inter 2s)
        ok, failures = _restart_under_load(front, apps, where, start, [0, 1], settle=2.5)
        print(
            f"HAProxy {mode.upper()} mode, both instances restarted under load: {ok} ok, "
            f"{len(failures)} failed"
        )
        assert failures == [] and ok > 50
    finally:
        _stop_all(haproxy, apps)


@pytest.mark.skipif(not shutil.which("haproxy"), reason="needs haproxy")
@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 20000,
    reason="needs a descriptor limit of 20,000 to lower to",
)
def test_haproxy_starts_as_shipped_where_the_descriptor_limit_is_20000(tmp_path: Path) -> None:
    """HAProxy needs about two descriptors per ``maxconn`` and will not start without
    them: the shipped config, its addresses moved to this checkout's, starts (serves
    its HTTP frontend) with ``ulimit -n 20000``, where ``maxconn 20000`` could not."""
    front, tcp, app1, app2 = free_port(), free_port(), free_port(), free_port()
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s*maxconn \d+", text, re.M)
    text = text.replace("bind :80", f"bind 127.0.0.1:{front}")
    text = text.replace("bind :8443", f"bind 127.0.0.1:{tcp}")
    text = text.replace("/run/lowserve/", f"{tmp_path}/")
    text = text.replace("127.0.0.1:8081", f"127.0.0.1:{app1}")
    text = text.replace("127.0.0.1:8082", f"127.0.0.1:{app2}")
    (tmp_path / "haproxy.cfg").write_text(text)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))

    haproxy = subprocess.Popen(
        ["haproxy", "-f", str(tmp_path / "haproxy.cfg"), "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    try:
        deadline = time.monotonic() + 20
        while haproxy.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", front), 5):
                break
            time.sleep(0.05)
        assert haproxy.poll() is None, haproxy.communicate(timeout=10)[1]
        with socket.create_connection(("127.0.0.1", front), 5):
            pass  # its HTTP frontend accepts
    finally:
        haproxy.terminate()
        haproxy.communicate(timeout=10)


@pytest.mark.skipif(
    not shutil.which("systemd-socket-activate"), reason="needs systemd-socket-activate"
)
def test_the_units_command_line_under_socket_activation(tmp_path: Path) -> None:
    """lowserve.socket's FileDescriptorName and lowserve.service's ExecStart, as systemd
    would run them (the binary and the port rewritten for this checkout)."""
    sock, service = _unit(DEPLOY / "lowserve.socket"), _unit(DEPLOY / "lowserve.service")
    name = sock["Socket"]["FileDescriptorName"]
    command = shlex.split(service["Service"]["ExecStart"])
    assert command[0] == VENV_LOWSERVE
    command[0] = LOWSERVE
    (tmp_path / "myapp.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", f"--fdname={name}", *command],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stderr = StderrLines(proc)
    try:
        deadline = time.monotonic() + 20
        body: dict[str, object] = {}
        while time.monotonic() < deadline and not body:
            try:
                body = _get(port)
            except (OSError, AssertionError, ValueError):
                time.sleep(0.1)
        assert body.get("path") == "/"
        stderr.wait_for("serving on", 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    lines = stderr.join()
    # the socket's name, from FileDescriptorName=, in the start-up line
    assert any("serving on" in ln and f"({name})" in ln for ln in lines), lines
