"""``lowserve.run``: serve a handler until SIGINT or SIGTERM, then stop gracefully."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any

from .conn.server import Handler, Server
from .options import DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_PORT
from .runner import BaseSite, ServerRunner, SockSite, TCPSite, UnixSite

__all__ = ["new_event_loop", "run", "serve"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def serve(
    handler: Handler,
    *,
    host: str | None = None,
    port: int | None = None,
    path: str | None = None,
    sock: socket.socket | None = None,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool | None = None,
    shutdown_timeout: float = 60.0,
    print: Callable[..., None] | None = print,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> None:
    """Serve until *stop* is set (or SIGINT/SIGTERM arrives), then clean up gracefully."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    runner = ServerRunner(Server(handler, **options), shutdown_timeout=shutdown_timeout)
    await runner.setup()
    sites: list[BaseSite] = []
    if sock is not None:
        sites.append(SockSite(runner, sock, ssl_context=ssl_context, backlog=backlog))
    if path is not None:
        sites.append(UnixSite(runner, path, ssl_context=ssl_context, backlog=backlog))
    if port is not None or host is not None or not sites:
        sites.append(
            TCPSite(
                runner,
                host or DEFAULT_HOST,
                DEFAULT_PORT if port is None else port,
                ssl_context=ssl_context,
                backlog=backlog,
                reuse_port=reuse_port,
            )
        )
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    try:
        for site in sites:
            await site.start()
        if print is not None:
            for site in sites:
                print(f"======== Serving on {site.name} ========")
            print("(Press CTRL+C to quit)")
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if await _stop_gracefully(runner, installed):
            raise ForcedStop


class ForcedStop(Exception):
    """A second SIGINT/SIGTERM cut the graceful stop short."""


async def _stop_gracefully(runner: ServerRunner, signals: list[signal.Signals]) -> bool:
    """``runner.cleanup()``; a second SIGINT or SIGTERM meanwhile aborts what is left.

    Returns True when it was cut short. Either way the cleanup completes, so no task
    is left pending and no KeyboardInterrupt escapes.
    """
    loop = asyncio.get_running_loop()
    forced = asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, forced.set)
    cleanup = asyncio.ensure_future(runner.cleanup())
    waiter = asyncio.ensure_future(forced.wait())
    try:
        await asyncio.wait({cleanup, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not cleanup.done():
            server = runner.server
            for conn in server.connections if server is not None else ():
                conn.cancel()
            await cleanup
            return True
        cleanup.result()
        return False
    finally:
        waiter.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)


def run(handler: Handler, **kwargs: Any) -> None:
    """Serve *handler* until SIGINT/SIGTERM (on uvloop when installed); see :func:`serve`.

    A second SIGINT/SIGTERM during the graceful stop ends it at once, and the
    process then exits with status 1 (no traceback).
    """
    loop = new_event_loop()
    forced = False
    try:
        loop.run_until_complete(serve(handler, **kwargs))
    except ForcedStop:
        forced = True
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    sys.stdout.flush()
    if forced:
        raise SystemExit(1)
