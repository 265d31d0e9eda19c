"""The servers the benchmarks compare, each serving the same handlers.

Run one as: python bench/servers.py {lowserve|aiohttp|uvicorn|floor|floor-http} PORT

``floor-http`` is the HTTP floor: a bare uvloop + httptools protocol answering hello, json
and echo with the same bytes lowserve sends (the same headers, a Date cached per second),
and nothing else (no request object, no routing beyond the path, no timeouts, no limits).
It shows how close lowserve is to what its own two building blocks allow.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

STREAM_SIZE = 100 * 2**20
PAYLOAD = {
    "id": 12345,
    "name": "lowserve",
    "tags": ["fast", "strict", "dull"] * 8,
    "items": [{"n": i, "ok": i % 2 == 0, "label": f"item-{i}"} for i in range(16)],
}


def _big_file() -> str:
    """A 100 MiB file on disk, made once per process (the FileResponse scenario)."""
    import os
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"lowserve-bench-{STREAM_SIZE}.bin")
    if not os.path.exists(path) or os.path.getsize(path) != STREAM_SIZE:
        with open(path + ".tmp", "wb") as f:
            f.truncate(STREAM_SIZE)
        os.replace(path + ".tmp", path)
    return path


def make_handler(web: Any) -> Callable[[Any], Awaitable[Any]]:
    """The benchmark handler written against *web*: ``aiohttp.web`` or ``lowserve.web``."""

    async def handler(request: Any) -> Any:
        path = request.path
        if path == "/echo":
            return web.Response(body=await request.read())
        if path == "/json":
            return web.json_response(PAYLOAD)
        if path == "/stream":
            resp = web.StreamResponse()
            resp.content_length = STREAM_SIZE
            await resp.prepare(request)
            chunk = b"x" * 65536
            for _ in range(STREAM_SIZE // 65536):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        if path == "/ws":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    await ws.send_str(msg.data)
            return ws
        if path == "/file" and hasattr(web, "FileResponse"):
            return web.FileResponse(_big_file())
        if path == "/upload":
            n = 0
            async for piece in request.content.iter_chunked(65536):
                n += len(piece)
            return web.Response(text=str(n))
        return web.Response(text="Hello, World!")

    return handler


async def _serve(web, port: int, metrics: bool = False) -> None:  # type: ignore[no-untyped-def]
    server = web.Server(make_handler(web), access_log=None)
    if metrics:
        server.record_metrics()  # what a worker under --metrics counts with
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def asgi_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    body = b"Hello, World!"
    if path == "/echo":
        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        headers = [(b"content-type", b"application/octet-stream")]
    elif path == "/json":
        body = json.dumps(PAYLOAD).encode()
        headers = [(b"content-type", b"application/json; charset=utf-8")]
    elif path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(STREAM_SIZE).encode()),
                ],
            }
        )
        chunk = b"x" * 65536
        for _ in range(STREAM_SIZE // 65536):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/upload":
        n = 0
        more = True
        while more:
            msg = await receive()
            n += len(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = str(n).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind in ("lowserve", "lowserve-metrics"):
        import uvloop

        from lowserve import web

        uvloop.run(_serve(web, port, metrics=kind == "lowserve-metrics"))
    elif kind == "aiohttp":
        import uvloop
        from aiohttp import web as aioweb

        uvloop.run(_serve(aioweb, port))
    elif kind == "uvicorn":
        import uvicorn

        print("ready", flush=True)
        uvicorn.run(
            "servers:asgi_app",
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
            app_dir=sys.path[0],
        )
    elif kind == "floor":
        floor(port)
    elif kind == "floor-http":
        import uvloop

        uvloop.run(floor_http(port))
    else:
        raise SystemExit(f"unknown server {kind!r}")


async def floor_http(port: int) -> None:
    """The HTTP floor: uvloop + httptools, one write per response, nothing else."""
    import email.utils
    import time

    import httptools

    loop = asyncio.get_running_loop()
    server_header = b"Server: Python/%d.%d lowserve/0.1.0\r\n" % sys.version_info[:2]
    date_second = 0
    date_value = b""

    def head(ctype: bytes, length: int, close: bool) -> bytes:
        nonlocal date_second, date_value
        now = time.time()
        if int(now) != date_second:
            date_second = int(now)
            date_value = email.utils.formatdate(now, usegmt=True).encode()
        return b"".join(
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: ",
                ctype,
                b"\r\nContent-Length: %d\r\nDate: " % length,
                date_value,
                b"\r\n",
                server_header,
                b"Connection: close\r\n\r\n" if close else b"\r\n",
            )
        )

    class Floor(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""
            self.body: list[bytes] = []

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            url = self.url
            if url == b"/echo":
                body = b"".join(self.body)
                self.body = []
                ctype = b"application/octet-stream"
            elif url == b"/json":
                body = json.dumps(PAYLOAD).encode()
                ctype = b"application/json; charset=utf-8"
            else:
                body = b"Hello, World!"
                ctype = b"text/plain; charset=utf-8"
            close = not self.parser.should_keep_alive()
            self.transport.write(head(ctype, len(body), close) + body)
            if close:
                self.transport.close()

        def connection_lost(self, exc: BaseException | None) -> None:
            pass

    server = await loop.create_server(Floor, "127.0.0.1", port, backlog=2048)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def floor(port: int) -> None:
    """The cat-to-socket floor: sendfile() a 100 MiB file, or read and drop an upload."""
    import socket
    import tempfile

    with tempfile.TemporaryFile() as data:
        block = b"x" * 65536
        for _ in range(STREAM_SIZE // len(block)):
            data.write(block)
        data.flush()
        srv = socket.create_server(("127.0.0.1", port))
        print("ready", flush=True)
        while True:
            conn, _ = srv.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break  # a readiness probe
                    head += chunk
                if b"\r\n\r\n" not in head:
                    continue
                head, _, rest = head.partition(b"\r\n\r\n")
                if head.startswith(b"GET"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % STREAM_SIZE)
                    conn.sendfile(data, 0, STREAM_SIZE)
                else:
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    got = len(rest)
                    while got < length:
                        got += len(conn.recv(1 << 20))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


if __name__ == "__main__":
    main()
