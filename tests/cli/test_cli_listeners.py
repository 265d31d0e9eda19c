"""Bind strings to sockets (lowserve.cli.listeners), in process, on loopback and in
temporary directories: every refusal is one line naming the bind and the cause."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from lowserve.cli.listeners import (
    BindError,
    Listener,
    describe_socket,
    open_listeners,
    parse_bind,
    queued,
    stop_arrivals,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:8080", ("tcp", "127.0.0.1", 8080)),
        ("[::1]:0", ("tcp", "::1", 0)),
        ("localhost:65535", ("tcp", "localhost", 65535)),
        ("unix:/run/x.sock", ("unix", "/run/x.sock", 0)),
        ("fd://3", ("fd", 3, 0)),
    ],
)
def test_parse_bind(text: str, parsed: tuple[str, str | int, int]) -> None:
    assert parse_bind(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unix:", "unix: needs a path"),
        ("fd://three", "fd:// needs a number"),
        ("http://127.0.0.1:80", "without a scheme"),
        ("127.0.0.1", "expected HOST:PORT"),
        (":8000", "give a host (0.0.0.0:8000 or [::]:8000"),
        ("127.0.0.1:http", "port 'http' is not a number"),
        ("127.0.0.1:70000", "port 70000 is out of range"),
    ],
)
def test_bad_binds_are_one_line(text: str, message: str) -> None:
    with pytest.raises(BindError) as err:
        parse_bind(text)
    assert str(err.value).startswith(f"bad bind '{text}': ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_tcp_v4_and_v6_and_tls_names() -> None:
    out = open_listeners(
        ["127.0.0.1:0", "[::1]:0"], backlog=8, reuse_port=True, unix_mode=None, tls=True
    )
    try:
        assert [lst.bound for lst in out] == [True, True]
        assert out[0].name.startswith("https://127.0.0.1:")
        assert out[1].name.startswith("https://[::1]:")
        assert out[1].sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert all(lst.sock.get_inheritable() for lst in out)
    finally:
        for lst in out:
            lst.sock.close()


def test_a_port_in_use_is_named_and_earlier_sockets_are_closed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "first.sock"
        with pytest.raises(BindError, match=rf"127\.0\.0\.1:{port}: address already in use$"):
            open_listeners(
                [f"unix:{path}", f"127.0.0.1:{port}"], backlog=8, reuse_port=False, unix_mode=None
            )
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))  # the first listener was closed again


def test_unix_socket_mode_stale_and_live_files(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on: replaced
    (lst,) = open_listeners([f"unix:{path}"], backlog=8, reuse_port=False, unix_mode=0o660)
    try:
        assert lst.name == f"unix:{path}" and lst.owned_path == str(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with pytest.raises(BindError, match=r"another process listens on it$"):
            open_listeners([f"unix:{path}"], backlog=8, reuse_port=False, unix_mode=None)
    finally:
        lst.sock.close()


def test_unix_refusals(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(BindError, match=r"it exists and is not a socket$"):
        open_listeners([f"unix:{regular}"], backlog=8, reuse_port=False, unix_mode=None)
    assert regular.read_text() == "x"
    missing = tmp_path / "no" / "dir.sock"
    with pytest.raises(BindError, match=rf"unix:{missing}: "):
        open_listeners([f"unix:{missing}"], backlog=8, reuse_port=False, unix_mode=None)


def test_inherited_descriptors(tmp_path: Path) -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        fd = os.dup(tcp.fileno())
        (lst,) = open_listeners([f"fd://{fd}"], backlog=8, reuse_port=False, unix_mode=None)
        try:
            assert lst.name == f"http://127.0.0.1:{tcp.getsockname()[1]}" and not lst.bound
        finally:
            lst.sock.close()
        with pytest.raises(BindError, match=r"not a stream socket$"):
            open_listeners([f"fd://{udp.fileno()}"], backlog=8, reuse_port=False, unix_mode=None)
    closed = os.dup(0)
    os.close(closed)
    with pytest.raises(BindError, match=rf"cannot use fd://{closed}: "):
        open_listeners([f"fd://{closed}"], backlog=8, reuse_port=False, unix_mode=None)


def test_describe_socket_falls_back_for_unnamed_sockets() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert describe_socket(a, "fd://9") == "fd://9"
    with socket.socket(socket.AF_INET6) as v6:
        v6.bind(("::1", 0))
        assert describe_socket(v6, "x") == f"http://[::1]:{v6.getsockname()[1]}"


def test_stop_arrivals_keeps_the_queue_and_takes_no_new_connection(tmp_path: Path) -> None:
    (tcp,) = open_listeners(["127.0.0.1:0"], backlog=8, reuse_port=False, unix_mode=None)
    (unix,) = open_listeners(
        [f"unix:{tmp_path / 'a.sock'}"], backlog=8, reuse_port=False, unix_mode=None
    )
    port = tcp.sock.getsockname()[1]
    try:
        early_tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
        early_unix = socket.socket(socket.AF_UNIX)
        early_unix.connect(str(tmp_path / "a.sock"))
        assert queued([tcp]) and queued([unix]) and not queued([])
        assert stop_arrivals(tcp) and stop_arrivals(unix)
        with pytest.raises(TimeoutError):  # the SYN is dropped, not answered
            socket.create_connection(("127.0.0.1", port), timeout=0.3)
        assert not (tmp_path / "a.sock").exists()
        for lst, early in ((tcp, early_tcp), (unix, early_unix)):
            conn, _ = lst.sock.accept()  # what was queued is still there
            with conn, early:
                early.sendall(b"ping")
                assert conn.recv(4) == b"ping"
        assert not queued([tcp, unix])
    finally:
        tcp.sock.close()
        unix.sock.close()
    a, b = socket.socketpair()
    with a, b:
        assert stop_arrivals(Listener(a, "fd://3")) is False  # not ours to stop
