"""FileResponse over real sockets: aiohttp's client, curl, and raw bytes."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from lowserve import web

from conftest import exchange, serve

DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "blob.bin").write_bytes(DATA)
    (tmp_path / "page.html").write_text("<p>plain</p>")
    (tmp_path / "app.js").write_text("console.log('plain')")
    (tmp_path / "app.js.gz").write_bytes(gzip.compress(b"console.log('gz')"))
    (tmp_path / "secret.txt").write_text("no")
    os.chmod(tmp_path / "secret.txt", 0)
    return tmp_path


def _handler(root: Path) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.FileResponse(root / request.path.lstrip("/"), chunk_size=65536)

    return handler


async def test_whole_file_type_validators_and_head(files: Path) -> None:
    async with serve(_handler(files)) as s, aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{s.port}/blob.bin") as resp:
            assert resp.status == 200 and await resp.read() == DATA
            assert resp.headers["Content-Type"] == "application/octet-stream"
            assert resp.headers["Content-Length"] == str(len(DATA))
            assert resp.headers["Accept-Ranges"] == "bytes"
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        async with session.get(f"http://127.0.0.1:{s.port}/page.html") as resp:
            assert resp.headers["Content-Type"].startswith("text/html")
        async with session.head(f"http://127.0.0.1:{s.port}/blob.bin") as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == str(len(DATA))
            assert await resp.read() == b""
        for headers, status in (
            ({"If-None-Match": etag}, 304),
            ({"If-None-Match": '"other"'}, 200),
            ({"If-Modified-Since": modified}, 304),
            ({"If-Modified-Since": formatdate(0, usegmt=True)}, 200),
            ({"If-Match": etag}, 200),
            ({"If-Match": '"other"'}, 412),
            ({"If-Unmodified-Since": formatdate(0, usegmt=True)}, 412),
        ):
            async with session.get(f"http://127.0.0.1:{s.port}/blob.bin", headers=headers) as resp:
                assert resp.status == status, headers
                body = await resp.read()
                assert body == (DATA if status == 200 else b"")


async def test_ranges(files: Path) -> None:
    async with serve(_handler(files)) as s, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{s.port}/blob.bin"
        for rng, start, stop in (
            ("bytes=0-99", 0, 100),
            ("bytes=1000-", 1000, len(DATA)),
            ("bytes=-10", len(DATA) - 10, len(DATA)),
        ):
            async with session.get(url, headers={"Range": rng}) as resp:
                assert resp.status == 206
                assert await resp.read() == DATA[start:stop]
                assert resp.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
        for rng in ("bytes=5000000-", "bytes=9-2", "bytes=-0", "bytes=\u0661-\u0662"):
            async with session.get(url, headers={"Range": rng}) as resp:
                assert resp.status == 416, rng
                assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"
        for rng in ("pages=1-2", "items=0-5"):  # a unit other than bytes: ignored
            async with session.get(url, headers={"Range": rng}) as resp:
                assert resp.status == 200 and await resp.read() == DATA, rng
        async with session.get(url, headers={"Range": "Bytes=0-9"}) as resp:
            assert resp.status == 206 and await resp.read() == DATA[:10]
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        for if_range, status in (
            ('"stale"', 200),
            (etag, 206),
            (formatdate(0, usegmt=True), 200),
            (modified, 206),
        ):
            headers = {"Range": "bytes=0-9", "If-Range": if_range}
            async with session.get(url, headers=headers) as resp:
                assert resp.status == status, if_range
                assert await resp.read() == (DATA if status == 200 else DATA[:10])


async def test_missing_unreadable_and_precompressed(files: Path) -> None:
    async with serve(_handler(files)) as s, aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"http://127.0.0.1:{s.port}/nope.txt") as resp:
            assert resp.status == 404
        if os.geteuid() != 0:  # root reads anything
            async with session.get(f"http://127.0.0.1:{s.port}/secret.txt") as resp:
                assert resp.status == 403
        async with session.get(
            f"http://127.0.0.1:{s.port}/app.js", headers={"Accept-Encoding": "gzip"}
        ) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Content-Type"].startswith(
                ("text/javascript", "application/javascript")
            )
            assert gzip.decompress(await resp.read()) == b"console.log('gz')"
        async with session.get(
            f"http://127.0.0.1:{s.port}/app.js", headers={"Accept-Encoding": "identity"}
        ) as resp:
            assert "Content-Encoding" not in resp.headers
            assert await resp.read() == b"console.log('plain')"


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
async def test_curl_range_and_resume(files: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(DATA[:300000])
    async with serve(_handler(files)) as s:
        import asyncio

        proc = await asyncio.create_subprocess_exec(
            "curl", "-s", "-C", "-", "-o", str(out), f"http://127.0.0.1:{s.port}/blob.bin"
        )
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert out.read_bytes() == DATA


async def test_raw_head_of_a_range() -> None:
    root = Path(__file__).resolve().parents[1]
    async with serve(_handler(root)) as s:
        raw = await exchange(
            s.port,
            b"GET /conftest.py HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n",
        )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert (
        b"\r\nContent-Length: 10\r\n" in head and body == (root / "conftest.py").read_bytes()[:10]
    )


async def test_sendfile_is_used_where_the_loop_has_it(files: Path) -> None:
    loop = asyncio.get_running_loop()
    calls: list[int | None] = []
    real = loop.sendfile

    async def counting(
        transport: asyncio.WriteTransport,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        calls.append(count)
        return await real(transport, file, offset, count, fallback=fallback)

    loop.sendfile = counting  # type: ignore[method-assign]
    try:
        async with (
            serve(_handler(files)) as s,
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{s.port}/blob.bin", headers={"Range": "bytes=100-"}
            ) as resp,
        ):
            assert await resp.read() == DATA[100:]
    finally:
        del loop.sendfile
    assert calls == [len(DATA) - 100]


def test_uvloop_without_sendfile_falls_back_to_reads(files: Path) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> bytes:
        async with (
            serve(_handler(files)) as s,
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{s.port}/blob.bin") as resp,
        ):
            return await resp.read()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == DATA
    finally:
        loop.close()


async def test_a_fifo_or_a_directory_is_403_at_once_and_a_fifo_sibling_is_skipped(
    files: Path,
) -> None:
    os.mkfifo(files / "pipe")
    os.mkfifo(files / "page.html.gz")  # a sibling that is no regular file
    (files / "folder").mkdir()
    async with serve(_handler(files)) as s, aiohttp.ClientSession() as session:

        async def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
            async with session.get(f"http://127.0.0.1:{s.port}{path}", headers=headers) as resp:
                return resp.status, await resp.read()

        # ten at once: more than enough to fill a small thread pool if any waited
        answers = await asyncio.wait_for(asyncio.gather(*(get("/pipe") for _ in range(10))), 5)
        assert answers == [(403, b"")] * 10
        assert await asyncio.wait_for(get("/folder"), 5) == (403, b"")
        assert await asyncio.wait_for(get("/page.html", {"Accept-Encoding": "gzip"}), 5) == (
            200,
            b"<p>plain</p>",
        )
        assert await asyncio.wait_for(get("/blob.bin"), 5) == (200, DATA)


async def test_root_keeps_what_is_opened_inside_it(
    files: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "x.txt").write_text("outside")
    (outside / "x.txt.gz").write_bytes(gzip.compress(b"outside"))
    (files / "x.txt").write_text("inside")
    (files / "x.txt.gz").symlink_to(outside / "x.txt.gz")  # a sibling leading out: skipped
    (files / "y.txt").symlink_to(outside / "x.txt")
    (files / "z.txt").symlink_to(files / "x.txt")  # a link within the root is followed

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.FileResponse(files / request.path.lstrip("/"), root=files)

    async with serve(handler) as s, aiohttp.ClientSession(auto_decompress=False) as session:

        async def get(path: str) -> tuple[int, bytes]:
            url = f"http://127.0.0.1:{s.port}{path}"
            async with session.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
                return resp.status, await resp.read()

        assert await get("/x.txt") == (200, b"inside")
        assert await get("/z.txt") == (200, b"inside")
        assert await get("/y.txt") == (404, b"")
        assert (await get(f"/..%2f{outside.name}%2fx.txt"))[0] == 404
        assert (await get("/a%00b"))[0] == 404


async def _get(port: int, target: str, *lines: str, method: str = "GET") -> tuple[bytes, bytes]:
    """The raw head and body of one request, with *lines* as its extra header lines."""
    extra = "".join(f"{line}\r\n" for line in lines)
    request = f"{method} {target} HTTP/1.1\r\nHost: a\r\n{extra}Connection: close\r\n\r\n"
    out = await exchange(port, request.encode())
    head, _, body = out.partition(b"\r\n\r\n")
    return head, body


def _header(head: bytes, name: str) -> list[str]:
    prefix = name.lower().encode() + b":"
    lines = head.split(b"\r\n")[1:]
    return [ln.split(b":", 1)[1].strip().decode() for ln in lines if ln.lower().startswith(prefix)]


async def test_multiple_ranges_are_one_multipart_206(files: Path) -> None:
    size = len(DATA)
    async with serve(_handler(files)) as s:
        head, body = await _get(s.port, "/blob.bin", "Range: bytes=5-6, 0-1")
        assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
        [ctype] = _header(head, "Content-Type")
        assert ctype.startswith("multipart/byteranges; boundary=")
        boundary = ctype.partition("boundary=")[2]
        assert len(boundary) == 32 and _header(head, "Content-Range") == []
        part = (
            "Content-Type: application/octet-stream\r\nContent-Range: bytes {}/" + f"{size}\r\n\r\n"
        )
        expected = (
            f"--{boundary}\r\n{part.format('0-1')}".encode()
            + DATA[0:2]
            + f"\r\n--{boundary}\r\n{part.format('5-6')}".encode()
            + DATA[5:7]
            + f"\r\n--{boundary}--\r\n".encode()
        )
        assert body == expected
        assert _header(head, "Content-Length") == [str(len(expected))]
        again, _ = await _get(s.port, "/blob.bin", "Range: bytes=0-1,5-6")
        assert _header(again, "Content-Type") != [ctype]  # a fresh boundary each time
        head, body = await _get(s.port, "/blob.bin", "Range: bytes=0-1,5-6", method="HEAD")
        assert _header(head, "Content-Length") == [str(len(expected))] and body == b""
        # a client reads it as multipart
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{s.port}/blob.bin"
            async with session.get(url, headers={"Range": "bytes=0-1,-3,100-"}) as resp:
                reader = aiohttp.MultipartReader.from_response(resp)
                parts = []
                while (got := await reader.next()) is not None:
                    assert isinstance(got, aiohttp.BodyPartReader)
                    parts.append((got.headers["Content-Range"], await got.read()))
        assert parts == [
            (f"bytes 0-1/{size}", DATA[:2]),
            (f"bytes 100-{size - 1}/{size}", DATA[100:]),
        ]


async def test_ranges_joined_and_bounded(files: Path) -> None:
    size = len(DATA)
    async with serve(_handler(files)) as s:
        for rng, span in (
            ("bytes=0-4,5-9", "0-9"),  # adjacent
            ("bytes=3-9,0-5", "0-9"),  # overlapping
            ("bytes=" + ",".join(["0-1"] * 1000), "0-1"),  # many small overlapping ones
        ):
            head, body = await _get(s.port, "/blob.bin", f"Range: {rng}")
            assert head.startswith(b"HTTP/1.1 206 "), rng
            assert _header(head, "Content-Range") == [f"bytes {span}/{size}"]
            first, last = map(int, span.split("-"))
            assert body == DATA[first : last + 1]
        many = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(17))  # past 16
        head, body = await _get(s.port, "/blob.bin", f"Range: {many}")
        assert head.startswith(b"HTTP/1.1 200 ") and body == DATA
        # several ranges of a precompressed variant: the whole variant, 200
        head, body = await _get(s.port, "/app.js", "Accept-Encoding: gzip", "Range: bytes=0-1,4-5")
        assert head.startswith(b"HTTP/1.1 200 ") and gzip.decompress(body) == b"console.log('gz')"
        head, body = await _get(s.port, "/app.js", "Accept-Encoding: gzip", "Range: bytes=0-1")
        assert head.startswith(b"HTTP/1.1 206 ") and len(body) == 2

    async def few(request: web.BaseRequest) -> web.StreamResponse:
        return web.FileResponse(files / "blob.bin", max_ranges=1)

    async with serve(few) as s:
        head, body = await _get(s.port, "/", "Range: bytes=0-1,5-6")
        assert head.startswith(b"HTTP/1.1 200 ") and body == DATA


async def test_vary_on_every_answer_for_a_file_with_siblings(files: Path) -> None:
    async with serve(_handler(files)) as s:
        for coding in ("gzip", "identity"):
            head, _ = await _get(s.port, "/app.js", f"Accept-Encoding: {coding}")
            assert head.startswith(b"HTTP/1.1 200 ") and _header(head, "Vary") == [
                "Accept-Encoding"
            ]
            [etag] = _header(head, "ETag")
            head, body = await _get(
                s.port, "/app.js", f"Accept-Encoding: {coding}", f"If-None-Match: {etag}"
            )
            assert head.startswith(b"HTTP/1.1 304 ") and body == b""
            assert _header(head, "Vary") == ["Accept-Encoding"], coding
        head, _ = await _get(s.port, "/app.js")  # no Accept-Encoding at all
        assert _header(head, "Vary") == ["Accept-Encoding"]
        assert _header(head, "Content-Encoding") == []
        head, _ = await _get(s.port, "/page.html", "Accept-Encoding: gzip")
        assert _header(head, "Vary") == []  # no sibling: nothing varies


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        (None, "plain"),
        ("gzip;q=0", "plain"),
        ("identity", "plain"),
        ("GZIP", "gz"),
        ("x-gzip", "gz"),
        ("br;q=0.5, gzip", "gz"),
        ("gzip, br", "br"),
        ("*", "br"),
        ("br;q=0, *", "gz"),
        ("gzip;q=0.5, identity", "plain"),
        ("brotli, gzipped", "plain"),  # whole names only, never substrings
    ],
)
async def test_accept_encoding_picks_the_best_variant(
    files: Path, accept: str | None, served: str
) -> None:
    (files / "app.js.br").write_bytes(b"BROTLI BYTES")
    bodies = {
        "plain": b"console.log('plain')",
        "gz": gzip.compress(b"console.log('gz')"),
        "br": b"BROTLI BYTES",
    }
    codings = {"plain": [], "gz": ["gzip"], "br": ["br"]}
    (files / "app.js.gz").write_bytes(bodies["gz"])
    async with serve(_handler(files)) as s:
        lines = () if accept is None else (f"Accept-Encoding: {accept}",)
        head, body = await _get(s.port, "/app.js", *lines)
    assert head.startswith(b"HTTP/1.1 200 ") and body == bodies[served]
    assert _header(head, "Content-Encoding") == codings[served]
