"""FileResponse over real sockets: aiohttp's client, curl, and raw bytes."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from email.utils import formatdate
from pathlib import Path

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


def _handler(root: Path):  # type: ignore[no-untyped-def]
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
        for rng in ("bytes=5000000-", "bytes=9-2", "pages=1-2"):
            async with session.get(url, headers={"Range": rng}) as resp:
                assert resp.status == 416, rng
                assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"
        async with session.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'}) as resp:
            assert resp.status == 200 and len(await resp.read()) == len(DATA)


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
    root = Path(__file__).resolve().parent
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
    calls: list[int] = []
    real = loop.sendfile

    async def counting(transport, file, offset=0, count=None, *, fallback=True):  # type: ignore[no-untyped-def]
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
