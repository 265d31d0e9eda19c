"""The PROXY protocol as HAProxy sends it (send-proxy-v2, and send-proxy), in TCP mode.

The client connects from 127.0.0.5, so the address lowserve reports can only have
come through the PROXY header: lowserve's own peer is HAProxy, on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from commandline import APP, free_port, lowserve

pytestmark = [
    pytest.mark.skipif(not shutil.which("haproxy"), reason="needs haproxy"),
    pytest.mark.timeout(60),
]


def _get_from(port: int, source: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        s.sendall(b"GET /remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("send_proxy", ["send-proxy-v2", "send-proxy"])
def test_haproxy_tcp_mode_with_the_proxy_protocol(tmp_path: Path, send_proxy: str) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    backend, front = free_port(), free_port()
    app = lowserve(
        "myapp:handler",
        "--port",
        str(backend),
        "--proxy-protocol",
        "--no-access-log",
        cwd=tmp_path,
    )
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        f"""
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{front}
    default_backend be
backend be
    server app 127.0.0.1:{backend} {send_proxy}
"""
    )
    haproxy = subprocess.Popen(
        ["haproxy", "-f", str(cfg), "-db"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # lowserve wants a PROXY header first: probe through HAProxy
        deadline = time.monotonic() + 20
        data = b""
        while time.monotonic() < deadline and b"HTTP/1.1 200" not in data:
            try:
                data = _get_from(front, "127.0.0.5")
            except OSError:
                time.sleep(0.1)
        assert b"HTTP/1.1 200" in data, data
        import json

        body = json.loads(data.partition(b"\r\n\r\n")[2])
        assert body["remote"] == "127.0.0.5"  # from the header, not the socket
        # straight to lowserve, without a header: closed unanswered
        with socket.create_connection(("127.0.0.1", backend), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100) == b""
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        app.send_signal(signal.SIGTERM)
        app.wait(20)
