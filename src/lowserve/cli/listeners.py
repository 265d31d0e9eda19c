"""Where to listen: bind strings to sockets, including inherited and systemd ones.

A bind is ``HOST:PORT``, ``[V6]:PORT``, ``unix:PATH`` or ``fd://N``. Sockets are made
once, by the process that starts serving, and shared with every worker.
A stop keeps new connections out of the sockets this process made, lets the workers
accept what is queued, and only then closes (:mod:`lowserve.listening`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Sequence
from typing import NamedTuple

from .. import listening
from ..options import DEFAULT_HOST, DEFAULT_PORT
from . import systemd

__all__ = [
    "BindError",
    "Listener",
    "open_admin",
    "open_listeners",
    "parse_bind",
    "queued",
    "stop_arrivals",
]


class BindError(Exception):
    """A socket could not be made; the message is one line for the user."""


class Listener(NamedTuple):
    """A listening socket, its name for logs, and the socket file it made, if any."""

    sock: socket.socket
    name: str
    #: Bound by this process (closed as soon as a stop begins, so that new
    #: connections are refused); False for inherited and systemd-passed sockets,
    #: whose queue belongs to whoever passed them.
    bound: bool = False
    #: The path of a UNIX socket file this process created (unlinked at stop).
    owned_path: str | None = None


def parse_bind(text: str) -> tuple[str, str | int, int]:
    """``("tcp", host, port)``, ``("unix", path, 0)`` or ``("fd", n, 0)``."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise BindError(f"bad bind '{text}': unix: needs a path")
        return "unix", path, 0
    if text.startswith("fd://"):
        try:
            return "fd", int(text[5:]), 0
        except ValueError:
            raise BindError(f"bad bind '{text}': fd:// needs a number") from None
    if "://" in text:
        raise BindError(
            f"bad bind '{text}': give HOST:PORT without a scheme (or unix:PATH, fd://N)"
        )
    host, sep, port = text.rpartition(":")
    if not sep:
        raise BindError(f"bad bind '{text}': expected HOST:PORT, unix:PATH or fd://N")
    if not host:
        raise BindError(
            f"bad bind '{text}': give a host (0.0.0.0{text} or [::]{text} for every interface)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise BindError(f"bad bind '{text}': port '{port}' is not a number") from None
    if not 0 <= number <= 65535:
        raise BindError(f"bad bind '{text}': port {number} is out of range")
    return "tcp", host or "0.0.0.0", number


def _describe(err: OSError) -> str:
    return {
        errno.EADDRINUSE: "address already in use",
        errno.EACCES: "permission denied",
        errno.EADDRNOTAVAIL: "address not available",
    }.get(err.errno or 0, err.strerror or str(err))


def _tcp(host: str, port: int, backlog: int, reuse_port: bool) -> Listener:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise BindError(f"cannot listen on {shown}:{port}: {_describe(exc)}") from None
    name = sock.getsockname()
    shown = f"[{name[0]}]" if family == socket.AF_INET6 else name[0]
    return Listener(sock, f"http://{shown}:{name[1]}", bound=True)


def _unix(path: str, backlog: int, mode: int | None) -> Listener:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise BindError(f"cannot listen on unix:{path}: it exists and is not a socket")
        if stat.S_ISSOCK(os.stat(path).st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: nobody listens on it
            else:
                raise BindError(f"cannot listen on unix:{path}: another process listens on it")
            finally:
                probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on unix:{path}: {_describe(exc)}") from None
    return Listener(sock, f"unix:{path}", bound=True, owned_path=path)


def _fd(fd: int) -> Listener:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"cannot use fd://{fd}: {_describe(exc)}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()  # the descriptor stays its owner's
        raise BindError(f"cannot use fd://{fd}: not a stream socket")
    return Listener(sock, describe_socket(sock, f"fd://{fd}"))


def describe_socket(sock: socket.socket, fallback: str) -> str:
    try:
        name = sock.getsockname()
    except OSError:
        return fallback
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}" if name else fallback
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"http://{host}:{name[1]}"


def open_listeners(
    binds: list[str], *, backlog: int, reuse_port: bool, unix_mode: int | None, tls: bool = False
) -> list[Listener]:
    """Make every socket asked for; with no binds, take systemd's sockets if passed."""
    if not binds:
        activated = systemd.listen_fds()
        if activated:
            scheme = "https://" if tls else "http://"
            return [
                Listener(s, f"{describe_socket(s, name)} ({name})".replace("http://", scheme, 1))
                for s, name in activated
            ]
        binds = [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
    out: list[Listener] = []
    try:
        for text in binds:
            kind, where, port = parse_bind(text)
            if kind == "tcp":
                out.append(_tcp(str(where), port, backlog, reuse_port))
            elif kind == "unix":
                out.append(_unix(str(where), backlog, unix_mode))
            else:
                out.append(_fd(int(where)))
    except BindError:
        for listener in out:
            listener.sock.close()
        raise
    for listener in out:
        listener.sock.set_inheritable(True)
    if tls:  # what clients type: https://
        out = [lst._replace(name=lst.name.replace("http://", "https://", 1)) for lst in out]
    return out


def open_admin(text: str) -> Listener:
    """The ``--metrics`` socket (``HOST:PORT`` or ``unix:PATH``); workers never inherit it."""
    kind, where, port = parse_bind(text)
    if kind == "fd":
        raise BindError(f"bad --metrics address '{text}': give HOST:PORT or unix:PATH")
    if kind == "tcp":
        return _tcp(str(where), port, 64, False)
    return _unix(str(where), 64, None)


def stop_arrivals(listener: Listener) -> bool:
    """Keep new connections out of *listener*'s queue (see :mod:`lowserve.listening`)."""
    return listening.stop_arrivals(listener.sock, listener.owned_path)


def queued(listeners: Sequence[Listener]) -> bool:
    """Whether a connection waits in any of *listeners*' accept queues."""
    return listening.queued(lst.sock for lst in listeners)
