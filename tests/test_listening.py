"""lowserve.listening: the SYN filter, queued() for any descriptor, and accepting in bursts."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import ssl
import sys

import pytest

from lowserve import listening, web

from conftest import exchange, serve


def test_queued_takes_descriptors_past_select_s_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("needs a descriptor limit of 2048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            sock = socket.socket(fileno=os.dup2(listener.fileno(), 1500))
            assert sock.fileno() == 1500
            with sock, socket.create_connection(listener.getsockname(), timeout=5):
                assert listening.queued([sock])  # select() would raise ValueError here
                listener.accept()[0].close()
                assert not listening.queued([sock])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_unix_socket_without_its_path_is_not_stopped() -> None:
    with socket.socket(socket.AF_UNIX) as unix:
        assert listening.stop_arrivals(unix) is False  # only its file keeps connects out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the SYN filter is Linux's")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_stopped_tcp_listener_keeps_its_queue_and_takes_no_new_connection(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        try:
            listener.bind((host, 0))
        except OSError:
            pytest.skip(f"{host} is not configured")
        listener.listen()
        address = listener.getsockname()[:2]
        with socket.create_connection(address, timeout=5) as waiting:
            waiting.sendall(b"sent before the stop")
            assert listening.stop_arrivals(listener) is True
            late = socket.socket(family)
            late.settimeout(0.5)
            with late, pytest.raises(TimeoutError):  # its SYN is dropped: no answer
                late.connect(address)
            assert listening.queued([listener])
            accepted, _ = listener.accept()  # the queued connection is whole
            with accepted:
                accepted.settimeout(5)
                assert accepted.recv(100) == b"sent before the stop"
            assert not listening.queued([listener])


# -- accepting in bursts (BurstAcceptor, used by every site) ---------------------------


async def _hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="hi")


def _turns_to_accept(count: int, burst: int | None) -> int:
    """Loop turns (under uvloop) until *count* connections queued at once are made.

    *burst* None: a TCPSite (its default burst); a number: a SockSite with that burst.
    """
    import uvloop

    async def main() -> int:
        server = web.Server(_hello, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        if burst is None:
            site: web.BaseSite = web.TCPSite(runner, "127.0.0.1", 0)
        else:
            sock = socket.create_server(("127.0.0.1", 0), backlog=count + 16)
            site = web.SockSite(runner, sock, accept_burst=burst)
        await site.start()
        port = site.addresses[0][1]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        try:
            for turn in range(1, 2 * count):
                if len(server.connections) == count:
                    return turn
                await asyncio.sleep(0)
            return 2 * count
        finally:
            for c in clients:
                c.close()
            await runner.cleanup()

    return uvloop.run(asyncio.wait_for(main(), 30))


def test_a_burst_of_queued_connections_is_accepted_in_a_few_loop_turns() -> None:
    # uvloop's own listener accepts one connection per turn of the loop: on a busy
    # server 1,024 connections opened at once waited seconds in the accept queue.
    assert _turns_to_accept(300, None) <= 20
    assert _turns_to_accept(300, 1) >= 250  # the loop's listener alone: one a turn


async def test_a_stopped_site_leaves_no_listener_behind() -> None:
    # The acceptor watches a duplicate descriptor: it must close with the site, or
    # the socket would go on listening (and queueing) with nobody to accept.
    async with serve(_hello) as served:
        port = served.port
        raw = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(b"hi")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_tls_connections_accepted_in_a_burst_are_served() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    server = web.Server(_hello, access_log=None)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site.addresses[0][1]

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    try:
        answers = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(40))), 20)
        assert all(a.startswith(b"HTTP/1.1 200 OK") and a.endswith(b"hi") for a in answers)
    finally:
        await runner.cleanup()


def test_a_listener_shut_down_under_a_site_stops_its_acceptor_quietly() -> None:
    # The supervisor shuts its sockets down to stop while the workers drain: accept()
    # then fails with EINVAL each time the socket is polled. It must not be an error
    # logged on every turn of the loop.
    import uvloop

    async def main() -> list[dict[str, object]]:
        errors: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        runner = web.ServerRunner(web.Server(_hello, access_log=None))
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, sock, accept_burst=16).start()
        sock.shutdown(socket.SHUT_RDWR)
        for _ in range(20):
            await asyncio.sleep(0.005)
        await runner.cleanup()
        return errors

    assert uvloop.run(asyncio.wait_for(main(), 10)) == []


async def test_tls_handshakes_that_fail_in_a_burst_are_closed_quietly() -> None:
    # Plain-text clients on a TLS site: each handshake fails before the connection is
    # made. Nothing reaches the loop's exception handler, and the site serves on.
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    runner = web.ServerRunner(web.Server(_hello, access_log=None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site.addresses[0][1]

    async def plain() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await reader.read()  # the server closes: not a TLS client
        writer.close()
        return data

    try:
        await asyncio.wait_for(asyncio.gather(*(plain() for _ in range(30))), 20)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 5)).endswith(b"hi")
        writer.close()
    finally:
        await runner.cleanup()
    assert errors == []


# -- on uvloop: descriptors handed over bare (listening._Accepted) --------------------


def _open_descriptors() -> int:
    """This process's open sockets."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the listing's own descriptor, closed since
            pass
    return count


async def _settled_descriptors(expected: int) -> int:
    """This process's open sockets once they number *expected* (the server saw every
    close), or as they are after 2 s, for the caller to assert."""
    for _ in range(200):
        if (count := _open_descriptors()) == expected:
            return count
        await asyncio.sleep(0.01)
    return _open_descriptors()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_descriptors_accepted_in_a_burst_are_closed_with_their_connections() -> None:
    # uvloop takes each descriptor without a socket.socket: libuv must close every one
    # when its connection ends, client-closed and server-closed alike.
    import uvloop

    async def main() -> tuple[int, int, list[bytes]]:
        runner = web.ServerRunner(web.Server(_hello, access_log=None))
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        await web.SockSite(runner, sock, accept_burst=64).start()
        port = sock.getsockname()[1]
        before = _open_descriptors()
        loop = asyncio.get_running_loop()

        def clients() -> list[bytes]:
            # 100 queued at once: 40 the server closes (Connection: close), 60 the
            # client closes after its answer.
            conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
            answers = []
            for i, c in enumerate(conns):
                close = b"Connection: close\r\n" if i < 40 else b""
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n")
            for c in conns:
                answers.append(c.recv(4096))
                c.close()
            return answers

        answers = await loop.run_in_executor(None, clients)
        after = await _settled_descriptors(before)
        await runner.cleanup()
        return before, after, answers

    before, after, answers = uvloop.run(asyncio.wait_for(main(), 30))
    assert all(a.startswith(b"HTTP/1.1 200 OK") and a.endswith(b"hi") for a in answers)
    assert after == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_descriptor_uvloop_did_not_take_is_closed() -> None:
    # The protocol factory fails before uvloop asks for the descriptor: the acceptor
    # closes it (the client sees its connection end), logs one DEBUG line, accepts on.
    import uvloop

    async def main() -> tuple[bytes, int, int]:
        loop = asyncio.get_running_loop()
        server = web.Server(_hello, access_log=None)
        server.bind_loop(loop)
        calls = 0

        def factory() -> asyncio.Protocol:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise MemoryError("the first connection's protocol")
            return server()

        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        before = _open_descriptors()
        acceptor = listening.BurstAcceptor(loop, listener, factory, None, 16)
        port = listener.getsockname()[1]
        try:
            first = await loop.run_in_executor(None, _one_exchange, port)
            second = await loop.run_in_executor(None, _one_exchange, port)
            assert second.endswith(b"hi")
            await asyncio.sleep(0.05)
            open_now = _open_descriptors()
        finally:
            acceptor.close()
            listener.close()
        return first, before + 1, open_now  # +1: the acceptor's duplicate

    first, expected, open_now = uvloop.run(asyncio.wait_for(main(), 20))
    assert first == b""
    assert open_now == expected


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_uvloop_that_refuses_bare_descriptors_gets_socket_objects_and_loses_nobody(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A later uvloop that asks more of a socket than _Accepted offers (here: fileno()
    # refused before uvloop took the descriptor) must not cost a connection: that one
    # and every later one go through a socket.socket, with one WARNING.
    import uvloop

    class Refused(listening._Accepted):  # the carrier under test
        __slots__ = ()

        def fileno(self) -> int:
            raise TypeError("a socket.socket is required")

    monkeypatch.setattr(listening, "_Accepted", Refused)

    async def main() -> tuple[list[bytes], int, int]:
        loop = asyncio.get_running_loop()
        server = web.Server(_hello, access_log=None)
        server.bind_loop(loop)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        before = _open_descriptors()
        acceptor = listening.BurstAcceptor(loop, listener, server, None, 16)
        port = listener.getsockname()[1]
        try:
            answers = [await loop.run_in_executor(None, _one_exchange, port) for _ in range(3)]
            open_now = await _settled_descriptors(before + 1)  # +1: the duplicate
        finally:
            acceptor.close()
            listener.close()
        return answers, before + 1, open_now  # +1: the acceptor's duplicate

    with caplog.at_level(logging.WARNING, logger="lowserve"):
        answers, expected, open_now = uvloop.run(asyncio.wait_for(main(), 20))
    assert all(a.startswith(b"HTTP/1.1 200 OK") and a.endswith(b"hi") for a in answers)
    assert open_now == expected
    refusals = [r for r in caplog.records if "refused a bare accepted descriptor" in r.message]
    assert len(refusals) == 1


def _one_exchange(port: int) -> bytes:
    """One request's answer; b"" when the server closed without one (a reset too: it
    closed with the request unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        data = b""
        try:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while chunk := c.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
        return data


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_tls_on_uvloop_bursts_closes_every_descriptor_handshakes_that_fail_included() -> None:
    trustme = pytest.importorskip("trustme")
    import uvloop

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> tuple[list[bytes], int, int]:
        runner = web.ServerRunner(web.Server(_hello, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = site.addresses[0][1]
        before = _open_descriptors()

        async def one(tls: bool) -> bytes:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx if tls else None
            )
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await reader.read()
            writer.close()
            return data

        answers = await asyncio.gather(*(one(i % 2 == 0) for i in range(40)))
        after = await _settled_descriptors(before)
        await runner.cleanup()
        return answers, before, after

    answers, before, after = uvloop.run(asyncio.wait_for(main(), 30))
    assert all(a.endswith(b"hi") for a in answers[::2])
    assert not any(a.endswith(b"hi") for a in answers[1::2])
    assert after == before
