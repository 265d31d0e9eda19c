"""lowserve.listening on its own: the SYN filter, and queued() for any descriptor."""

from __future__ import annotations

import os
import resource
import socket
import sys

import pytest

from lowserve import listening


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
