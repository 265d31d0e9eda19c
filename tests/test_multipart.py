"""request.multipart(): aiohttp's streaming reader, over real sockets with aiohttp's client."""

from __future__ import annotations

import json

import aiohttp
import pytest

from lowserve import web

from conftest import exchange, serve


async def _describe(request: web.BaseRequest) -> web.Response:
    reader = await request.multipart()
    parts = []
    async for part in reader:
        if isinstance(part, web.MultipartReader):
            inner = []
            async for sub in part:
                assert isinstance(sub, web.BodyPartReader)
                inner.append([sub.filename, (await sub.read()).decode()])
            parts.append({"nested": inner})
            continue
        if part.filename:
            size, chunks = 0, 0
            while chunk := await part.read_chunk(1000):
                size += len(chunk)
                chunks += 1
            parts.append({"name": part.name, "file": part.filename, "size": size, "chunks": chunks})
        elif part.headers.get("Content-Type", "").startswith("application/json"):
            parts.append({"name": part.name, "json": await part.json()})
        else:
            parts.append({"name": part.name, "text": await part.text()})
    return web.json_response(parts)


async def test_fields_files_json_and_chunked_reads() -> None:
    big = b"z" * 250_000
    form = aiohttp.FormData()
    form.add_field("title", "héllo")
    form.add_field("doc", json.dumps({"a": 1}), content_type="application/json")
    form.add_field("upload", big, filename="big.bin", content_type="application/octet-stream")
    async with (
        serve(_describe, client_max_size=10**7) as s,
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{s.port}/", data=form) as resp,
    ):
        assert resp.status == 200
        parts = await resp.json()
    assert parts[0] == {"name": "title", "text": "héllo"}
    assert parts[1] == {"name": "doc", "json": {"a": 1}}
    assert parts[2]["file"] == "big.bin" and parts[2]["size"] == len(big)
    assert parts[2]["chunks"] >= 250  # read 1000 bytes at a time, not whole


async def test_nested_multipart_and_release() -> None:
    body = (
        b'--outer\r\nContent-Disposition: form-data; name="files"\r\n'
        b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
        b'--inner\r\nContent-Disposition: file; filename="a.txt"\r\n\r\nAAA\r\n'
        b'--inner\r\nContent-Disposition: file; filename="b.txt"\r\n\r\nBBB\r\n'
        b"--inner--\r\n"
        b'\r\n--outer\r\nContent-Disposition: form-data; name="skip"\r\n\r\nignored\r\n'
        b'--outer\r\nContent-Disposition: form-data; name="last"\r\n\r\nkept\r\n--outer--\r\n'
    )

    async def handler(request: web.BaseRequest) -> web.Response:
        reader = await request.multipart()
        nested = await reader.next()
        assert isinstance(nested, web.MultipartReader)
        first = await nested.next()
        assert isinstance(first, web.BodyPartReader) and first.filename == "a.txt"
        out = [(await first.read()).decode()]
        await nested.release()  # b.txt is skipped
        skip = await reader.next()
        assert skip is not None and skip.name == "skip"
        last = await reader.next()  # the skipped part was released on the way
        assert isinstance(last, web.BodyPartReader)
        out.append(await last.text())
        assert await reader.next() is None
        return web.json_response(out)

    async with serve(handler) as s:
        raw = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=outer\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body),
        )
    assert raw.endswith(b'["AAA", "kept"]'), raw


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
            + b"x" * 2000
            + b"\r\n--b--\r\n",
            413,
        ),
        (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
                for i in range(12)
            )
            + b"--b--\r\n",
            413,
        ),
        (b"garbage without any boundary at all", 400),
    ],
)
async def test_bounds(body: bytes, status: int) -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        reader = await request.multipart()
        n = 0
        async for part in reader:
            await part.read()  # type: ignore[union-attr]
            n += 1
        return web.Response(text=str(n))

    async with serve(handler, client_max_size=1000, client_max_fields=10) as s:
        raw = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body),
        )
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:100]
