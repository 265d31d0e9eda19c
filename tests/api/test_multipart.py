"""request.multipart(): aiohttp's streaming reader, over real sockets with aiohttp's client."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import aiohttp
import pytest
from multidict import CIMultiDict

from lowserve import web

from conftest import exchange, serve


async def _describe(request: web.BaseRequest) -> web.Response:
    reader = await request.multipart()
    parts: list[dict[str, object]] = []
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
        assert isinstance(skip, web.BodyPartReader) and skip.name == "skip"
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
            assert isinstance(part, web.BodyPartReader)
            await part.read()
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


class _Pieces:
    """A body source for MultipartReader, handing out fixed pieces (readany())."""

    def __init__(self, data: bytes, size: int) -> None:
        self._pieces = [data[i : i + size] for i in range(0, len(data), size)]

    async def readany(self) -> bytes:
        return self._pieces.pop(0) if self._pieces else b""


def _multipart(*parts: tuple[str, bytes]) -> bytes:
    out = b""
    for headers, payload in parts:
        out += b"--b\r\n" + headers.encode() + b"\r\n\r\n" + payload + b"\r\n"
    return out + b"--b--\r\n"


HEADERS = {"Content-Type": "multipart/form-data; boundary=b"}
MIXED = {"Content-Type": "multipart/mixed; boundary=b"}


async def _aiohttp_reader(body: bytes, headers: dict[str, str]) -> aiohttp.MultipartReader:
    from unittest import mock

    stream = aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=mock.Mock())
    stream.feed_data(body)
    stream.feed_eof()
    return aiohttp.MultipartReader(headers, stream)


async def _body_part(
    reader: web.MultipartReader | aiohttp.MultipartReader,
) -> web.BodyPartReader | aiohttp.BodyPartReader:
    """The reader's next part, which must be a body part (not a nested multipart)."""
    part = await reader.next()
    assert isinstance(part, (web.BodyPartReader, aiohttp.BodyPartReader))
    return part


@pytest.mark.parametrize("piece", [1, 7, 4096])
@pytest.mark.parametrize("headers", [MIXED, HEADERS], ids=["mixed", "form-data"])
async def test_readline_and_decode_iter_match_aiohttp(piece: int, headers: dict[str, str]) -> None:
    """The same bytes through both readers: lines, base64, and gzip (applied in
    multipart/mixed, left alone in multipart/form-data as RFC 7578 §4.8 says)."""
    text = b"first line\r\nsecond\nthird without an end"
    packed = gzip.compress(b"compressed " * 5_000)  # inflates to 55,000 bytes
    body = _multipart(
        ('Content-Disposition: form-data; name="t"', text),
        ('Content-Disposition: form-data; name="z"\r\nContent-Encoding: gzip', packed),
        (
            'Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: base64',
            base64.b64encode(b"\x00binary\xff"),
        ),
    )
    results = []
    for reader in (
        web.MultipartReader(CIMultiDict(headers), _Pieces(body, piece)),
        await _aiohttp_reader(body, headers),
    ):
        lines = []
        part = await _body_part(reader)
        while line := await part.readline():
            lines.append(line)
        zipped = await _body_part(reader)
        raw = await zipped.read()
        pieces = [bytes(p) async for p in zipped.decode_iter(raw)]
        quoted = await _body_part(reader)
        results.append(
            (lines, b"".join(pieces), zipped.decode(raw), await quoted.read(decode=True))
        )
        assert await reader.next() is None
        if isinstance(reader, web.MultipartReader):
            assert max(len(p) for p in pieces) <= 65536  # inflated a piece at a time
    ours, theirs = results
    assert ours == theirs
    assert ours[0] == [b"first line\r\n", b"second\n", b"third without an end"]
    assert ours[1] == (b"compressed " * 5_000 if headers is MIXED else packed)
    assert ours[3] == b"\x00binary\xff"


async def test_decode_returns_the_whole_part_and_refuses_unknown_codings() -> None:
    """decode() returns a part inflated past 64 KiB whole, as aiohttp's does. An unknown
    coding is the client's fault: 400 (aiohttp raises RuntimeError, a 500)."""
    packed = gzip.compress(b"compressed " * 20_000)
    body = _multipart(("Content-Disposition: attachment\r\nContent-Encoding: gzip", packed))
    part = await web.MultipartReader(CIMultiDict(MIXED), _Pieces(body, 4096)).next()
    theirs = await _body_part(await _aiohttp_reader(body, MIXED))
    assert isinstance(part, web.BodyPartReader)
    raw = await part.read()
    assert part.decode(raw) == theirs.decode(await theirs.read()) == b"compressed " * 20_000
    body = _multipart(("Content-Disposition: attachment\r\nContent-Encoding: br", b"x"))
    part = await web.MultipartReader(CIMultiDict(MIXED), _Pieces(body, 4096)).next()
    assert isinstance(part, web.BodyPartReader)
    with pytest.raises(web.HTTPBadRequest) as err:
        await part.read(decode=True)
    assert "unknown content coding 'br'" in (err.value.text or "")


async def test_a_compressed_part_is_bounded_after_inflation() -> None:
    """aiohttp inflates a part whatever it grows to; lowserve holds it to
    client_max_size: 10 KiB of gzip that inflates to 10 MiB is refused (413)."""
    bomb = gzip.compress(b"\0" * 10 * 2**20)
    assert len(bomb) < 20_000
    body = _multipart(("Content-Disposition: attachment\r\nContent-Encoding: gzip", bomb))

    async def handler(request: web.BaseRequest) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert isinstance(part, web.BodyPartReader)
        return web.Response(body=await part.read(decode=True))

    async with serve(handler, client_max_size=2**20) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/mixed; boundary=b\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body),
        )
    assert out.startswith(b"HTTP/1.1 413 ")
    part = await web.MultipartReader(CIMultiDict(MIXED), _Pieces(body, 4096)).next()
    assert isinstance(part, web.BodyPartReader)
    with pytest.raises(web.HTTPBadRequest) as err:
        part.decode(bomb[:-20])  # truncated: 400, not a partial body
    assert "ends early" in (err.value.text or "")


async def test_a_line_longer_than_the_bound_is_refused() -> None:
    body = _multipart(('Content-Disposition: form-data; name="t"', b"x" * 5000))
    reader = web.MultipartReader(CIMultiDict(HEADERS), _Pieces(body, 1000), max_size=4096)
    part = await reader.next()
    assert isinstance(part, web.BodyPartReader)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await part.readline()


async def test_a_deflate_part_from_aiohttps_writer_is_read_as_aiohttp_reads_it() -> None:
    """aiohttp's MultipartWriter sends a ``deflate`` part raw (no zlib wrapper); its reader
    and lowserve's both inflate it (one decoder, wire.codings, for bodies and parts)."""
    payload = b"deflated part " * 3000

    async def handler(request: web.BaseRequest) -> web.Response:
        part = await (await request.multipart()).next()
        assert isinstance(part, web.BodyPartReader)
        raw = await part.read()
        decoded = part.decode(raw)
        return web.json_response([base64.b64encode(raw).decode(), decoded == payload])

    with aiohttp.MultipartWriter("mixed", boundary="b") as writer:
        writer.append(payload, {"Content-Encoding": "deflate"})
    async with (
        serve(handler) as s,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(f"http://127.0.0.1:{s.port}/", data=writer) as resp,
    ):
        assert resp.status == 200
        packed, inflated = await resp.json()
    raw = base64.b64decode(packed)
    assert zlib.decompress(raw, -zlib.MAX_WBITS) == payload  # raw deflate indeed
    assert inflated is True
    body = _multipart(("Content-Disposition: attachment\r\nContent-Encoding: deflate", raw))
    theirs = await _body_part(await _aiohttp_reader(body, MIXED))
    assert theirs.decode(await theirs.read()) == payload


async def test_a_zlib_wrapped_deflate_part_is_read_too() -> None:
    """RFC 9110's ``deflate`` is zlib-wrapped: lowserve reads it (told from raw by its
    first byte, as aiohttp's request bodies are); aiohttp's part reader fails (a 500)."""
    payload = b"zlib part " * 3000
    body = _multipart(
        ("Content-Disposition: attachment\r\nContent-Encoding: deflate", zlib.compress(payload))
    )
    part = await web.MultipartReader(CIMultiDict(MIXED), _Pieces(body, 4096)).next()
    assert isinstance(part, web.BodyPartReader)
    assert await part.read(decode=True) == payload
    theirs = await _body_part(await _aiohttp_reader(body, MIXED))
    with pytest.raises(zlib.error):
        theirs.decode(await theirs.read())


async def test_part_data_gives_the_current_part_and_never_the_next() -> None:
    """MultipartReader.part_data() (what BodyPartReader.readany() reads) ends with the
    part: asking again, or reading the part after it, does not eat the next part."""
    body = _multipart(
        ('Content-Disposition: form-data; name="a"', b"x" * 10_000),
        ('Content-Disposition: form-data; name="b"', b"y"),
    )
    reader = web.MultipartReader(CIMultiDict(HEADERS), _Pieces(body, 1000))
    first = await reader.next()
    assert isinstance(first, web.BodyPartReader)
    data = b""
    while piece := await reader.part_data():
        data += piece
    assert data == b"x" * 10_000
    assert await reader.part_data() == b"" and await first.read() == b""
    second = await reader.next()
    assert isinstance(second, web.BodyPartReader) and second.name == "b"
    assert await second.read() == b"y"
    assert await reader.next() is None and await reader.part_data() == b""
