"""A corpus of handlers written against aiohttp's low-level API, served by both servers.

``make_handler(web)`` takes the ``web`` namespace (aiohttp's or lowserve's), so the very
same handler code runs under each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _body(kind: str) -> Any:
    """A body of each kind aiohttp's Response takes, for /body-<kind>."""
    import warnings

    import aiohttp

    async def pieces(fail: bool = False) -> Any:
        yield b"one;"
        if fail:
            raise RuntimeError("the body's source failed")
        yield b"two"

    if kind == "streamer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp deprecates it

            @aiohttp.streamer
            async def sender(writer: Any, n: int) -> None:
                for i in range(n):
                    await writer.write(b"x%d;" % i)

        return sender(3)
    if kind in ("file", "textfile"):
        return open(Path(__file__).with_name("hostile_corpus.py"), "rb" if kind == "file" else "r")
    if kind == "multipart":
        with aiohttp.MultipartWriter("form-data", boundary="BnD") as mp:
            mp.append("text part")
            mp.append_json({"a": 1})
            mp.append(pieces())
        return mp
    return pieces(fail=kind == "agen-fails")


def make_handler(web: Any) -> Any:
    async def handler(request: Any) -> Any:
        path = request.path
        if path == "/file":
            return web.FileResponse(Path(__file__).with_name("hostile_corpus.py"))
        if path.startswith("/payload-"):  # aiohttp's Payload classes, as bodies
            from aiohttp import payload

            async def pieces() -> Any:
                yield b"one;"
                yield b"two"

            makers: dict[str, Callable[[], payload.Payload]] = {
                "/payload-bytes": lambda: payload.BytesPayload(b"raw", content_type="x/y"),
                "/payload-string": lambda: payload.StringPayload("h\u00e9", encoding="latin-1"),
                "/payload-json": lambda: payload.JsonPayload({"a": [1, 2]}),
                "/payload-aiter": lambda: payload.AsyncIterablePayload(pieces()),
                "/payload-file": lambda: payload.BufferedReaderPayload(
                    open(Path(__file__).with_name("hostile_corpus.py"), "rb")  # noqa: SIM115
                ),
                "/payload-headers": lambda: payload.BytesPayload(
                    b"h", headers={"X-From-Payload": "1", "Content-Disposition": "inline"}
                ),
            }
            return web.Response(body=makers[path]())
        if path.startswith("/body-"):  # bodies beyond bytes and text
            return web.Response(body=_body(path[6:]))
        if path == "/text":
            return web.Response(text="hello")
        if path == "/bytes":
            return web.Response(body=b"\x00\x01binary")
        if path == "/empty":
            return web.Response()
        if path == "/json":
            return web.json_response({"a": 1, "b": [1, 2, 3], "c": None})
        if path == "/json-none":
            return web.json_response(None)
        if path == "/status":
            return web.Response(status=201, text="created", reason="Made It")
        if path == "/headers":
            return web.Response(text="h", headers={"X-One": "1", "X-Two": "two"})
        if path == "/content-type":
            return web.Response(text="<b>x</b>", content_type="text/html", charset="latin-1")
        if path == "/stream":
            resp = web.StreamResponse()
            resp.headers["X-Stream"] = "yes"
            await resp.prepare(request)
            for i in range(3):
                await resp.write(b"chunk%d;" % i)
            await resp.write_eof()
            return resp
        if path == "/stream-length":
            resp = web.StreamResponse()
            resp.content_length = 6
            resp.content_type = "text/plain"
            await resp.prepare(request)
            await resp.write(b"abc")
            await resp.write(b"def")
            await resp.write_eof()
            return resp
        if path == "/stream-unprepared":
            return web.StreamResponse(status=202)
        if path == "/raise404":
            raise web.HTTPNotFound()
        if path == "/raise-text":
            raise web.HTTPForbidden(text="nope")
        if path == "/redirect":
            raise web.HTTPFound("/elsewhere?x=1")
        if path == "/moved":
            raise web.HTTPMovedPermanently(location="https://example.com/")
        if path == "/405":
            raise web.HTTPMethodNotAllowed("POST", ["GET", "HEAD"])
        if path == "/204":
            raise web.HTTPNoContent()
        if path == "/304":
            return web.Response(status=304)
        if path == "/204-body":
            return web.Response(status=204, text="ignored")
        if path == "/500":
            raise RuntimeError("boom")
        if path == "/timeout":
            raise TimeoutError()
        if path == "/none":
            return None
        if path == "/cookies":
            resp = web.Response(text="c")
            resp.set_cookie("a", "1", max_age=10, httponly=True)
            resp.set_cookie("b", "two words", path="/x", samesite="Lax")
            resp.del_cookie("gone")
            return resp
        if path == "/force-close":
            resp = web.Response(text="bye")
            resp.force_close()
            return resp
        if path == "/chunked":
            resp = web.Response(text="chunky")
            resp.enable_chunked_encoding()
            return resp
        if path == "/compress":
            resp = web.Response(text="z" * 1000)
            resp.enable_compression()
            return resp
        if path == "/last-modified":
            resp = web.Response(text="lm")
            resp.last_modified = 1_700_000_000
            resp.etag = "abc"
            return resp
        if path == "/echo":
            body = await request.read()
            return web.Response(body=body, content_type=request.content_type)
        if path == "/json-echo":
            data = await request.json()
            return web.json_response({"got": data})
        if path == "/form":
            form = await request.post()
            return web.json_response(
                {
                    k: (v if isinstance(v, str) else f"file:{v.filename}:{v.file.read().decode()}")
                    for k, v in form.items()
                }
            )
        if path == "/stream-read":
            parts = []
            async for chunk in request.content.iter_chunked(3):
                parts.append(chunk.decode())
            return web.json_response(parts)
        if path.startswith("/introspect"):
            return web.json_response(
                {
                    "method": request.method,
                    "version": list(request.version),
                    "path": request.path,
                    "raw_path": request.raw_path,
                    "path_qs": request.path_qs,
                    "query": sorted(request.query.items()),
                    "query_string": request.query_string,
                    "url": str(request.url),
                    "rel_url": str(request.rel_url),
                    "host": request.host,
                    "scheme": request.scheme,
                    "secure": request.secure,
                    "keep_alive": request.keep_alive,
                    "headers": sorted(request.headers.items()),
                    "cookies": sorted(request.cookies.items()),
                    "content_type": request.content_type,
                    "charset": request.charset,
                    "content_length": request.content_length,
                    "body_exists": request.body_exists,
                    "can_read_body": request.can_read_body,
                    "if_modified_since": str(request.if_modified_since),
                    "if_none_match": str(request.if_none_match),
                    "forwarded": [dict(f) for f in request.forwarded],
                    "remote": request.remote,
                    "http_range": str(request.http_range) if "Range" in request.headers else None,
                }
            )
        if path == "/ws":
            ws = web.WebSocketResponse(protocols=("chat",))
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    await ws.send_str("echo:" + msg.data)
                elif msg.type == web.WSMsgType.BINARY:
                    await ws.send_bytes(msg.data[::-1])
            return ws
        if path == "/ws-manual":  # the handler answers pings and the client's close itself
            ws = web.WebSocketResponse(autoping=False, autoclose=False)
            await ws.prepare(request)
            msg = await ws.receive()
            if msg.type is web.WSMsgType.PING:
                await ws.pong(b"mine:" + msg.data)
            msg = await ws.receive()
            closing = await ws.receive()
            await ws.send_str(f"{msg.type.name} {msg.data} {msg.extra} {closing.type.name}")
            await ws.close(code=4000, message=b"mine")
            return ws
        if path == "/ws-server-close":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json({"hello": "world"})
            await ws.close(code=4000, message=b"done")
            return ws
        return web.Response(text="fallback " + json.dumps(path))

    return handler
