"""Every vector of tests/hostile_corpus.py, followed by a harmless pipelined request.

A refused head gets its precise status, ``Connection: close`` and the close, and
the handler sees neither request; a broken body is answered precisely by the
handler that read it, and the request behind it is never seen; a declined upgrade
is answered, and so is the request behind it. No vector logs a traceback or
anything above DEBUG, and the server answers a fresh connection afterwards.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from hostile_corpus import VECTORS
from lowserve import web

from conftest import serve

HARMLESS = b"GET /harmless HTTP/1.1\r\nHost: a\r\n\r\n"
HARMLESS_CLOSE = b"GET /harmless HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def test_the_corpus_is_large_and_covers_every_kind() -> None:
    assert len(VECTORS) >= 80
    assert len({name for name, *_ in VECTORS}) == len(VECTORS)
    assert {cat for _, _, cat, _ in VECTORS} == {"head", "body", "declined"}
    statuses = {status for *_, status in VECTORS}
    assert {400, 413, 414, 415, 417, 431, 501, 505} <= statuses


def _statuses(data: bytes) -> list[int]:
    return [int(part[:3]) for part in data.split(b"HTTP/1.1 ")[1:] if part[:3].isdigit()]


@pytest.mark.parametrize(
    ("name", "raw", "category", "status"), VECTORS, ids=[v[0] for v in VECTORS]
)
async def test_vector(
    name: str, raw: bytes, category: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "lowserve")
    seen: list[str] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        seen.append(request.path)
        if request.path == "/echo":
            return web.Response(body=await request.read())
        return web.Response(text="ok")

    # HTTP/2's preface is HTTP/2 unless it is off (tests/conn/test_h2.py serves it).
    options = {"http2": False} if name == "h2-preface" else {}
    async with serve(handler, **options) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(raw + (HARMLESS_CLOSE if category == "declined" else HARMLESS))
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        if category == "declined":
            assert _statuses(answer) == [200, 200], answer[:200]
            assert seen == ["/echo", "/harmless"]
        else:
            assert _statuses(answer) == [status], answer[:200]
            head = answer.partition(b"\r\n\r\n")[0]
            assert b"\r\nConnection: close" in head
            assert seen == ([] if category == "head" else ["/echo"])
        # a fresh connection is served
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(HARMLESS_CLOSE)
        assert _statuses(await asyncio.wait_for(reader.read(), 5)) == [200]
        writer.close()
    noisy = [r for r in caplog.records if r.levelno > logging.DEBUG or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
