"""``ServerRunner`` and its sites: where a :class:`Server` listens.

``cleanup()`` is the graceful stop: the sockets the sites made take no new
connection while the loop accepts the queued ones (:mod:`lowserve.listening`), the
sites stop listening, and the server drains (:meth:`Server.shutdown`): requests in
flight get up to ``shutdown_timeout`` seconds to finish, then whatever is left is
cancelled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import stat
import time
from typing import Any

from . import listening
from .conn.server import Server
from .options import DEFAULT_BACKLOG, DEFAULT_PORT, DEFAULT_TLS_PORT

__all__ = ["BaseSite", "GracefulExit", "ServerRunner", "SockSite", "TCPSite", "UnixSite"]


class GracefulExit(SystemExit):
    """Raised by the signal handlers of ``ServerRunner(handle_signals=True)``."""

    code = 1


def _raise_graceful_exit() -> None:
    raise GracefulExit()


class ServerRunner:
    """Owns a :class:`Server` and the sites that listen for it."""

    def __init__(
        self,
        server: Server,
        *,
        handle_signals: bool = False,
        shutdown_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(kwargs))}")
        self._server_obj = server
        self._handle_signals = handle_signals
        self.shutdown_timeout = shutdown_timeout
        self._sites: list[BaseSite] = []
        self._ready = False

    @property
    def server(self) -> Server | None:
        return self._server_obj if self._ready else None

    @property
    def sites(self) -> set[BaseSite]:
        return set(self._sites)

    @property
    def addresses(self) -> list[Any]:
        """The bound address of every listening socket."""
        return [address for site in self._sites for address in site.addresses]

    async def setup(self) -> None:
        """Prepare to serve (installs SIGINT/SIGTERM handlers when asked)."""
        loop = asyncio.get_running_loop()
        if self._handle_signals:
            try:
                loop.add_signal_handler(signal.SIGINT, _raise_graceful_exit)
                loop.add_signal_handler(signal.SIGTERM, _raise_graceful_exit)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
        self._server_obj.bind_loop(loop)
        self._ready = True

    async def shutdown(self) -> None:
        """Hook for subclasses: called after the sites stop, before connections close."""

    async def cleanup(self) -> None:
        """Stop listening, then stop the server gracefully within ``shutdown_timeout``.

        First the sockets this runner's sites made take no new connection, and the
        loop accepts the ones queued, for at most ``listening.QUEUE_WAIT`` seconds:
        a close would reset them (see :mod:`lowserve.listening`).
        """
        gated = [sock for site in self._sites for sock in site.stop_arrivals()]
        started = time.monotonic()
        while listening.queued(gated) and time.monotonic() - started < listening.QUEUE_WAIT:
            await asyncio.sleep(0.002)
        for site in list(self._sites):
            await site.stop()
        await self.shutdown()
        if self._ready:
            await self._server_obj.shutdown(self.shutdown_timeout)
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            try:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            except NotImplementedError:  # pragma: no cover
                pass
        self._ready = False

    def register_site(self, site: BaseSite) -> None:
        """Called by a site's ``start()``: *site* listens for this runner."""
        if site in self._sites:
            raise RuntimeError(f"Site {site} is already registered in runner {self}")
        self._sites.append(site)

    def unregister_site(self, site: BaseSite) -> None:
        """Called by a site's ``stop()``."""
        if site in self._sites:
            self._sites.remove(site)


def _ready_server(runner: ServerRunner) -> Server:
    """*runner*'s server, once it is set up (a site cannot be made or started before)."""
    server = runner.server
    if server is None:
        raise RuntimeError("Call runner.setup() before making a site")
    return server


class BaseSite:
    """A listening socket of a runner."""

    def __init__(
        self,
        runner: ServerRunner,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        server = _ready_server(runner)
        self._runner = runner
        if ssl_context is not None:
            # The protocols TLS offers (ALPN): HTTP/2 first unless it is off. Set on the
            # context given, which serves this server's sites.
            ssl_context.set_alpn_protocols(
                ["h2", "http/1.1"] if server.options.http2 else ["http/1.1"]
            )
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self._acceptors: list[listening.BurstAcceptor] = []
        #: Connections accepted at once when a socket is readable (1: the loop's own
        #: listener alone, which accepts one per turn); see lowserve.listening.
        self._accept_burst = listening.ACCEPT_BURST

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def addresses(self) -> list[Any]:
        """The bound address of each socket this site listens on (none until started)."""
        if self._server is None:
            return []
        return [sock.getsockname() for sock in self._server.sockets]

    async def start(self) -> None:
        self._runner.register_site(self)

    def _listening(self, server: asyncio.Server) -> None:
        """*server* listens for this site: its sockets also accept in bursts
        (:class:`~lowserve.listening.BurstAcceptor`)."""
        self._server = server
        if self._accept_burst <= 1:
            return
        loop = asyncio.get_running_loop()
        factory = _ready_server(self._runner)
        self._acceptors = [
            listening.BurstAcceptor(loop, sock, factory, self._ssl_context, self._accept_burst)
            for sock in server.sockets
        ]

    def stop_arrivals(self) -> list[Any]:
        """Keep new connections out of the sockets this site made; return them.

        Called by ``ServerRunner.cleanup()`` before the sites stop.
        """
        if self._server is None:
            return []
        return [sock for sock in self._server.sockets if listening.stop_arrivals(sock)]

    async def stop(self) -> None:
        """Stop listening; open connections are left to the runner's cleanup."""
        self._runner.unregister_site(self)
        for acceptor in self._acceptors:
            acceptor.close()
        self._acceptors = []
        if self._server is not None:
            self._server.close()
            self._server = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.name}>"


class TCPSite(BaseSite):
    """Listen on a TCP host and port (``port=0`` picks a free one; see :attr:`port`)."""

    def __init__(
        self,
        runner: ServerRunner,
        host: str | None = None,
        port: int | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = DEFAULT_BACKLOG,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        if port is None:
            port = DEFAULT_TLS_PORT if ssl_context else DEFAULT_PORT
        self._port = port
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = "0.0.0.0" if not self._host else self._host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = _ready_server(self._runner)
        self._listening(
            await loop.create_server(
                server,
                self._host,
                self._port,
                ssl=self._ssl_context,
                backlog=self._backlog,
                reuse_address=self._reuse_address,
                reuse_port=self._reuse_port,
            )
        )


class UnixSite(BaseSite):
    """Listen on a UNIX socket *path*; ``mode`` sets the socket file's permissions."""

    def __init__(
        self,
        runner: ServerRunner,
        path: str | os.PathLike[str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = DEFAULT_BACKLOG,
        mode: int | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._path = os.fspath(path)
        self._mode = mode
        self._unlinked = False

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://unix:{self._path}:"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = _ready_server(self._runner)
        self._listening(
            await loop.create_unix_server(
                server, self._path, ssl=self._ssl_context, backlog=self._backlog
            )
        )
        if self._mode is not None:
            os.chmod(self._path, self._mode)

    def stop_arrivals(self) -> list[Any]:
        if self._server is None:
            return []
        socks = list(self._server.sockets)
        for sock in socks:
            listening.stop_arrivals(sock, self._path)
        self._unlinked = True
        return socks

    async def stop(self) -> None:
        await super().stop()
        if self._unlinked:  # by stop_arrivals: the path may be another server's now
            return
        try:
            if stat.S_ISSOCK(os.stat(self._path).st_mode):
                os.unlink(self._path)
        except OSError:
            pass


class SockSite(BaseSite):
    """Listen on a socket that is already bound (inherited, or from systemd).

    ``accept_burst`` (lowserve's): how many queued connections are accepted at once
    when the socket is readable; small by default, as other processes may accept
    from the same socket (see :mod:`lowserve.listening`). 1 leaves accepting to the
    event loop's own listener.
    """

    def __init__(
        self,
        runner: ServerRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = DEFAULT_BACKLOG,
        accept_burst: int = listening.SHARED_ACCEPT_BURST,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        self._accept_burst = accept_burst
        scheme = "https" if ssl_context else "http"
        if sock.family == getattr(socket, "AF_UNIX", None):
            self._name = f"{scheme}://unix:{sock.getsockname()}:"
        else:
            host, port = sock.getsockname()[:2]
            self._name = f"{scheme}://{host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    def stop_arrivals(self) -> list[Any]:
        return []  # the socket, and its queue, belong to whoever passed it

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = _ready_server(self._runner)
        if self._sock.family == getattr(socket, "AF_UNIX", None):
            listener = await loop.create_unix_server(
                server, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
            )
        else:
            listener = await loop.create_server(
                server, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
            )
        self._listening(listener)
