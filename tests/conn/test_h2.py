"""HTTP/2 (conn/h2connection.py and its stream, request and library modules): h2c by
prior knowledge and h2 over TLS by ALPN, serving the same handlers, checked frame by frame with python-hyper's h2 client and with curl."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import h2.errors
import h2.events
import pytest

from lowserve import web

from conftest import H2Client, exchange, serve


async def app(request: web.BaseRequest) -> web.StreamResponse:
    path = request.path
    if path == "/json":
        return web.json_response(
            {
                "version": list(request.version),
                "host": request.host,
                "method": request.method,
                "scheme": request.scheme,
                "headers": sorted(k.lower() for k in request.headers),
                "cookie": request.headers.get("Cookie"),
            }
        )
    if path == "/stream":
        resp = web.StreamResponse(headers={"X-Kind": "stream"})
        resp.content_type = "text/plain"
        await resp.prepare(request)
        for i in range(3):
            await resp.write(b"chunk %d\n" % i)
        await resp.write_eof()
        return resp
    if path == "/echo":
        return web.Response(body=await request.read())
    if path == "/missing":
        raise web.HTTPNotFound()
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/sleep":
        await asyncio.sleep(0.05)
        return web.Response(text="slept")
    if path == "/connection":
        return web.Response(text="x", headers={"Connection": "keep-alive", "Keep-Alive": "5"})
    return web.Response(text="hello h2")


@pytest.fixture
async def served() -> AsyncIterator[Any]:
    async with serve(app) as srv:
        yield srv


async def test_prior_knowledge_serves_the_same_handlers(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        status, headers, body = await client.request("GET", "/")
        assert (status, body) == (200, b"hello h2")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["content-length"] == "8"
        assert "date" in headers and headers["server"].startswith("Python/")
        status, headers, body = await client.request("GET", "/stream")
        assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\n")
        assert headers["x-kind"] == "stream" and "transfer-encoding" not in headers
        assert (await client.request("GET", "/missing"))[0] == 404
        status, _, body = await client.request("GET", "/boom")
        assert status == 500 and b"Server got itself in trouble" in body
        status, _, body = await client.request("POST", "/echo", b"x" * 100_000)
        assert (status, len(body)) == (200, 100_000)
    finally:
        client.close()


async def test_request_as_the_handler_sees_it(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        stream = client.send_request(
            "GET", "/json", headers=[("cookie", "a=1"), ("cookie", "b=2"), ("x-one", "1")]
        )
        status, _, body = await client.response(stream)
        assert status == 200
        import json

        seen = json.loads(body)
        assert seen["version"] == [2, 0] and seen["method"] == "GET"
        assert seen["host"] == "localhost" and seen["scheme"] == "http"
        assert seen["cookie"] == "a=1; b=2"  # RFC 9113 §8.2.3: crumbs joined
        assert not any(h.startswith(":") for h in seen["headers"])  # no pseudo-headers
        assert "x-one" in seen["headers"]
    finally:
        client.close()


async def test_connection_specific_fields_are_not_sent(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        status, headers, _ = await client.request("GET", "/connection")
        assert status == 200 and "connection" not in headers and "keep-alive" not in headers
    finally:
        client.close()


async def test_head_sends_no_body(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        stream = client.send_request("HEAD", "/")
        status, headers, body = await client.response(stream)
        assert (status, body) == (200, b"") and headers["content-length"] == "8"
        ended = [e for e in client.events if isinstance(e, h2.events.ResponseReceived)]
        assert ended[0].stream_ended is not None  # HEADERS carried END_STREAM
    finally:
        client.close()


async def test_concurrent_streams_answer_independently(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        slow = client.send_request("GET", "/sleep")
        fast = client.send_request("GET", "/")
        assert (await client.response(fast))[2] == b"hello h2"
        assert (await client.response(slow))[2] == b"slept"
        order = [e.stream_id for e in client.events if isinstance(e, h2.events.StreamEnded)]
        assert order == [fast, slow]
    finally:
        client.close()


async def test_preface_split_byte_by_byte(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        preface = client.conn.data_to_send()  # nothing yet: the client flushed it already
        assert preface == b""
    finally:
        client.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")],
        end_stream=True,
    )
    data = conn.data_to_send()
    for i in range(30):  # the preface and the SETTINGS frame, a byte at a time
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0.001)
    writer.write(data[30:])
    try:
        assert await _body_of_the_stream(conn, reader, writer) == b"hello h2"
    finally:
        writer.close()


async def _body_of_the_stream(
    conn: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bytes:
    """Read frames into the client connection *conn* (answering what it must) until a
    stream ends; the body its DATA frames carried. Each read waits at most 5 s."""
    body = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk
        events = conn.receive_data(chunk)
        writer.write(conn.data_to_send())
        body += b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
        if any(isinstance(e, h2.events.StreamEnded) for e in events):
            return body


@pytest.mark.parametrize("max_pipeline", [1, 32])
async def test_preface_in_a_long_first_read(max_pipeline: int) -> None:
    """The preface, SETTINGS, a request and 8 KiB of its body in one write: a read
    long enough to be sliced (its "head", the preface's first line, parsed alone).
    Every byte past the preface reaches HTTP/2, and the body comes back whole."""
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "x")]
    )
    sent = b"\r\n\r\n" + bytes(range(256)) * 32
    conn.send_data(1, sent, end_stream=True)
    async with serve(app, max_pipeline=max_pipeline) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(conn.data_to_send())
            assert await _body_of_the_stream(conn, reader, writer) == sent
        finally:
            writer.close()


async def test_no_http2_answers_the_preface_505() -> None:
    async with serve(app, http2=False) as srv:
        out = await exchange(srv.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 505 ")


async def test_preface_after_an_http11_request_is_505(served: Any) -> None:
    out = await exchange(
        served.port,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 505 " in out


async def test_http11_still_served_beside_it(served: Any) -> None:
    out = await exchange(served.port, b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b'"version": [1, 1]' in out


def _tls(tmp_path: Any) -> tuple[ssl.SSLContext, ssl.SSLContext, str]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return server_ctx, client_ctx, str(tmp_path / "ca.pem")


async def _serve_tls(server_ctx: ssl.SSLContext, **options: Any) -> tuple[web.ServerRunner, int]:
    server = web.Server(app, access_log=None, **options)
    runner = web.ServerRunner(server, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_tls_alpn_picks_h2(tmp_path: Any) -> None:
    server_ctx, client_ctx, _ = _tls(tmp_path)
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    runner, port = await _serve_tls(server_ctx)
    try:
        client = await H2Client.connect(port, ssl=client_ctx)
        try:
            ssl_object = client.writer.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == "h2"
            status, _, body = await client.request("GET", "/json")
            assert status == 200 and b'"scheme": "https"' in body and b"[2, 0]" in body
        finally:
            client.close()
        # A client offering only http/1.1 gets HTTP/1.1 on the same port.
        plain = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        plain.set_alpn_protocols(["http/1.1"])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=plain, server_hostname="localhost"
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert out.startswith(b"HTTP/1.1 200 ")
    finally:
        await runner.cleanup()


async def test_no_http2_offers_only_http11_over_tls(tmp_path: Any) -> None:
    server_ctx, client_ctx, _ = _tls(tmp_path)
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    runner, port = await _serve_tls(server_ctx, http2=False)
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
        writer.close()
    finally:
        await runner.cleanup()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, timeout=20
    )


needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None
    or "HTTP2" not in subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout,
    reason="curl with HTTP/2",
)


@needs_curl
async def test_curl_prior_knowledge(served: Any) -> None:
    # One URL per run: curl 7.88 fails (exit 16) to reuse a prior-knowledge connection,
    # against any server (granian's too).
    url = f"http://127.0.0.1:{served.port}"
    result = await asyncio.to_thread(
        _curl, "--http2-prior-knowledge", "-w", " %{http_version}", f"{url}/json"
    )
    assert result.returncode == 0, result.stderr
    assert '"version": [2, 0]' in result.stdout and result.stdout.endswith(" 2")
    result = await asyncio.to_thread(_curl, "--http2-prior-knowledge", f"{url}/stream")
    assert result.stdout == "chunk 0\nchunk 1\nchunk 2\n"
    upload = b"u" * 300_000
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            "curl",
            "-s",
            "--max-time",
            "10",
            "--http2-prior-knowledge",
            "--data-binary",
            "@-",
            "-H",
            "Expect: 100-continue",
            "-w",
            "\n%{http_code} %{http_version}",
            f"{url}/echo",
        ],
        input=upload,
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 0 and proc.stdout == upload + b"\n200 2"


@needs_curl
async def test_curl_over_tls_negotiates_h2(tmp_path: Any) -> None:
    server_ctx, _, cafile = _tls(tmp_path)
    runner, port = await _serve_tls(server_ctx)
    try:
        result = await asyncio.to_thread(
            _curl,
            "--http2",
            "--cacert",
            cafile,
            "-w",
            " %{http_version}",
            f"https://localhost:{port}/json",
            "--resolve",
            f"localhost:{port}:127.0.0.1",
        )
        assert result.returncode == 0, result.stderr
        assert '"scheme": "https"' in result.stdout and result.stdout.endswith(" 2")
    finally:
        await runner.cleanup()


async def test_request_body_is_held_to_the_window_until_read() -> None:
    """A handler that has not read its body yet holds the client to its window:
    the memory a body costs is bounded by the window, not by what the client sends."""
    release = asyncio.Event()

    async def slow_reader(request: web.BaseRequest) -> web.Response:
        await release.wait()
        return web.Response(text=str(len(await request.read())))

    async with serve(slow_reader, read_bufsize=65536, client_max_size=0) as srv:
        client = await H2Client.connect(srv.port)
        try:
            stream = client.send_request("POST", "/", b"b" * 2_000_000)
            # The client is stopped by the window: at most the stream's window beyond
            # the body's buffer (2 x read_bufsize) ever left it.
            with pytest.raises(asyncio.TimeoutError):
                await client.read_until(lambda e: False, timeout=0.5)
            left = len(client._unsent[stream][0])
            assert 2_000_000 - left <= 2 * 65536 + 65536 + 16384
            release.set()
            status, _, body = await client.response(stream)
            assert (status, body) == (200, b"2000000")
        finally:
            client.close()


async def test_response_waits_on_the_peers_window() -> None:
    """A client that opens a small window and takes nothing holds the handler in
    write() (drain waits on the window); its WINDOW_UPDATEs let it go on."""
    written: list[int] = []

    async def writer(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(20):
            await resp.write(b"w" * 10_000)
            written.append(i)
        await resp.write_eof()
        return resp

    async with serve(writer) as srv:
        client = await H2Client.connect(srv.port, settings={0x4: 5000})  # INITIAL_WINDOW_SIZE
        client.auto_ack = False
        try:
            stream = client.send_request("GET", "/")
            with pytest.raises(asyncio.TimeoutError):
                await client.read_until(lambda e: False, timeout=0.5)
            assert len(written) <= 1  # the first write waits for the window
            client.auto_ack = True
            got = sum(
                e.flow_controlled_length
                for e in client.events
                if isinstance(e, h2.events.DataReceived)
            )
            assert got == 5000
            client.conn.acknowledge_received_data(got, stream)
            client.conn.increment_flow_control_window(1 << 20, stream)
            client.flush()
            status, _, body = await client.response(stream)
            assert (status, len(body), len(written)) == (200, 200_000, 20)
        finally:
            client.close()


async def test_expect_100_continue() -> None:
    async def reader(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    async with serve(reader) as srv:
        client = await H2Client.connect(srv.port)
        try:
            stream = client.send_request(
                "POST",
                "/",
                headers=[("expect", "100-continue"), ("content-length", "5")],
                end=False,
            )
            info = await client.read_until(
                lambda e: isinstance(e, h2.events.InformationalResponseReceived)
            )
            assert dict(info.headers)[":status"] == "100"
            client.conn.send_data(stream, b"hello", end_stream=True)
            client.flush()
            assert await client.response(stream) == (200, mock_any_headers(), b"hello")
        finally:
            client.close()


class mock_any_headers(dict[str, str]):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict)


async def test_204_and_304_end_with_the_headers() -> None:
    async def empty(request: web.BaseRequest) -> web.Response:
        status = int(request.path[1:])
        return web.Response(
            status=status, headers={"Content-Length": "10"} if status == 304 else None
        )

    async with serve(empty) as srv:
        client = await H2Client.connect(srv.port)
        try:
            for status in (204, 304):
                stream = client.send_request("GET", f"/{status}")
                got, headers, body = await client.response(stream)
                assert (got, body) == (status, b"")
                assert "content-length" not in headers  # as over HTTP/1.1
                head = [
                    e
                    for e in client.events
                    if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream
                ]
                assert head[0].stream_ended is not None
        finally:
            client.close()


async def test_file_response_with_a_range(tmp_path: Any) -> None:
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)

    async def files(request: web.BaseRequest) -> web.StreamResponse:
        return web.FileResponse(path)

    async with serve(files) as srv:
        client = await H2Client.connect(srv.port)
        try:
            status, headers, body = await client.request("GET", "/")
            assert (status, body) == (200, data) and headers["content-length"] == str(len(data))
            status, headers, body = await client.request(
                "GET", "/", headers=[("range", "bytes=10-19")]
            )
            assert (status, body) == (206, data[10:20])
            assert headers["content-range"] == f"bytes 10-19/{len(data)}"
            etag = headers["etag"]
            status, _, body = await client.request("GET", "/", headers=[("if-none-match", etag)])
            assert (status, body) == (304, b"")
        finally:
            client.close()


async def test_body_shorter_than_its_content_length_is_refused(served: Any) -> None:
    client = await H2Client.connect(served.port)
    try:
        stream = client.send_request("POST", "/echo", headers=[("content-length", "10")], end=False)
        client.conn.send_data(stream, b"12345", end_stream=True)
        client.flush()
        end = await client.read_until(
            lambda e: isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated))
        )
        assert end is not None and end.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    finally:
        client.close()


needs_nghttp = pytest.mark.skipif(
    shutil.which("nghttp") is None or shutil.which("h2load") is None,
    reason="needs Debian's nghttp2-client",
)


@needs_nghttp
async def test_nghttp_uploads_and_reads(served: Any, tmp_path: Any) -> None:
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"n" * 200_000)
    url = f"http://127.0.0.1:{served.port}"
    result = await asyncio.to_thread(
        subprocess.run,
        ["nghttp", "-v", "-t", "10", "-d", str(upload), f"{url}/echo"],
        capture_output=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"n" * 1000) >= 1  # the echoed body
    assert b":status: 200" in result.stdout and b"recv SETTINGS frame" in result.stdout


@needs_nghttp
async def test_h2load_all_succeed(served: Any) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", f"http://127.0.0.1:{served.port}/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "2000 succeeded, 0 failed, 0 errored" in result.stdout
    assert "2000 2xx" in result.stdout


async def test_a_websocket_handler_on_http2_is_a_clean_refusal() -> None:
    async def ws_handler(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        return ws

    async with serve(ws_handler) as srv:
        client = await H2Client.connect(srv.port)
        try:
            status, _, _ = await client.request("GET", "/")
            assert status == 400  # not an upgrade: RFC 8441 is not offered
            assert (await client.request("GET", "/"))[0] == 400  # the connection goes on
        finally:
            client.close()


async def test_an_idle_connection_is_closed_with_goaway() -> None:
    async with serve(app, keepalive_timeout=0.3) as srv:
        client = await H2Client.connect(srv.port)
        try:
            assert (await client.request("GET", "/"))[0] == 200
            began = asyncio.get_running_loop().time()
            end = await client.goaway(timeout=5)
            assert end is not None and end.error_code == h2.errors.ErrorCodes.NO_ERROR
            assert end.last_stream_id == 1
            assert asyncio.get_running_loop().time() - began >= 0.25
            await client.read_until(lambda e: False, timeout=5)
            assert client.closed
        finally:
            client.close()


async def test_a_stalled_body_fails_the_read_with_408() -> None:
    async def reader(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    async with serve(reader, body_read_timeout=0.3) as srv:
        client = await H2Client.connect(srv.port)
        try:
            stream = client.send_request(
                "POST", "/", headers=[("content-length", "100")], end=False
            )
            client.conn.send_data(stream, b"x" * 10)  # ... and nothing more
            client.flush()
            status, _, _ = await client.response(stream, timeout=5)
            assert status == 408
        finally:
            client.close()


async def test_graceful_stop_sends_goaway_twice_and_answers_what_is_in_flight() -> None:
    gate = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.Response:
        await gate.wait()
        return web.Response(text="done")

    async with serve(slow) as srv:
        client = await H2Client.connect(srv.port)
        try:
            stream = client.send_request("GET", "/")
            await asyncio.sleep(0.05)
            stopping = asyncio.ensure_future(srv.server.shutdown(5))
            first = await client.goaway()
            assert first.last_stream_id == 2**31 - 1 and first.error_code == 0
            second = await client.read_until(
                lambda e: isinstance(e, h2.events.ConnectionTerminated) and e is not first
            )
            assert second.last_stream_id == stream
            late = client.send_request("GET", "/")  # past the last stream: refused
            refused = await client.read_until(
                lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == late
            )
            assert refused.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            gate.set()
            assert await client.response(stream) == (200, mock_any_headers(), b"done")
            await asyncio.wait_for(stopping, 5)
            assert srv.server.cancelled_count == 0
        finally:
            client.close()


async def test_a_handler_still_running_at_the_end_of_a_stop_is_cancelled_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = asyncio.Event()

    async def forever(request: web.BaseRequest) -> web.Response:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    async with serve(forever) as srv:
        client = await H2Client.connect(srv.port)
        try:
            client.send_request("GET", "/stuck")
            await asyncio.sleep(0.05)
            await srv.server.shutdown(0.3)
            await asyncio.wait_for(cancelled.wait(), 5)
            assert srv.server.cancelled_count == 1
            assert any(
                "cancelled at shutdown: GET /stuck" in r.getMessage() for r in caplog.records
            )
        finally:
            client.close()
