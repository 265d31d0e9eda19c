"""lowserve.listening on its own: the SYN filter, and queued() for any descriptor."""

from __future__ import annotations

import os
import resource
import socket

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
