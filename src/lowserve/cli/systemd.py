"""systemd integration with the standard library only.

* ``listen_fds()``: socket activation. The fds are ours only when ``LISTEN_PID`` is our
  pid; they start at 3; ``LISTEN_FDNAMES`` names them. Each socket's family and type
  are read from the socket itself. The variables are unset once read, so children do
  not take the sockets for theirs.
* ``notify()``: one datagram per message to ``NOTIFY_SOCKET`` (a path, or the abstract
  namespace when it starts with ``@``); errors are ignored.
* ``watchdog_interval()``: half of ``WATCHDOG_USEC`` when the watchdog is meant for us.
* ``journal_stderr()``: whether stderr is connected to the journal.
"""

from __future__ import annotations

import os
import socket
import sys

__all__ = ["journal_stderr", "listen_fds", "notify", "watchdog_interval"]

SD_LISTEN_FDS_START = 3


def listen_fds(unset: bool = True) -> list[tuple[socket.socket, str]]:
    """The sockets systemd passed to this process, with their names."""
    env = os.environ
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    names = env.get("LISTEN_FDNAMES", "").split(":")
    if unset:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(key, None)
    if pid != os.getpid() or count <= 0:
        return []
    out = []
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        os.set_inheritable(fd, True)
        sock = socket.socket(fileno=fd)  # family and type come from the socket itself
        name = names[i] if i < len(names) and names[i] else f"fd{fd}"
        out.append((sock, name))
    return out


def notify(*lines: str) -> bool:
    """Send ``KEY=VALUE`` lines to systemd; False when there is nobody to tell."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall("\n".join(lines).encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half the timeout), or None when not asked."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


def journal_stderr() -> bool:
    """True when stderr is the journal (``JOURNAL_STREAM`` matches its device:inode)."""
    value = os.environ.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"
