"""systemd's environment protocol (lowserve.cli.systemd), in process: LISTEN_*,
NOTIFY_SOCKET (path and abstract), WATCHDOG_* and JOURNAL_STREAM, including the values
that must be ignored. The end-to-end cases are in test_cli.py and test_deploy.py."""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import pytest

from lowserve.cli import systemd


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LISTEN_PID": "x", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "1", "LISTEN_FDS": "1"},  # meant for another process
        {"LISTEN_PID": "<me>", "LISTEN_FDS": "0"},
    ],
    ids=["unset", "not-a-number", "other-pid", "no-fds"],
)
def test_listen_fds_ignores_what_is_not_for_us(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("<me>", str(os.getpid())))
    monkeypatch.setenv("LISTEN_FDNAMES", "web")
    assert systemd.listen_fds() == []
    if env and env["LISTEN_PID"] != "x":
        assert "LISTEN_FDNAMES" not in os.environ  # unset, as sd_listen_fds(1) does


def test_notify_to_a_path_and_to_an_abstract_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    path = str(tmp_path / "notify")
    abstract = f"lowserve-test-{os.getpid()}"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_path,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_name,
    ):
        by_path.bind(path)
        by_name.bind("\0" + abstract)
        by_path.settimeout(5)
        by_name.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.notify("READY=1", "STATUS=serving") is True
        assert by_path.recv(100) == b"READY=1\nSTATUS=serving"
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + abstract)
        assert systemd.notify("WATCHDOG=1") is True
        assert by_name.recv(100) == b"WATCHDOG=1"
    monkeypatch.setenv("NOTIFY_SOCKET", path + ".gone")
    assert systemd.notify("READY=1") is False  # nobody listens: not an error


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [
        (None, None, None),
        ("3000000", None, 1.5),
        ("3000000", "<me>", 1.5),
        ("3000000", "1", None),  # another process's watchdog
        ("soon", None, None),
    ],
)
def test_watchdog_interval(
    usec: str | None, pid: str | None, interval: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value.replace("<me>", str(os.getpid())))
    assert systemd.watchdog_interval() == interval


def test_journal_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert systemd.journal_stderr() is False
    with open(tmp_path / "err", "w") as err:
        st = os.fstat(err.fileno())
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert systemd.journal_stderr() is True
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert systemd.journal_stderr() is False
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no descriptor at all
    assert systemd.journal_stderr() is False
