"""Every example runs: the handler modules serve, the systemd units parse."""

from __future__ import annotations

import configparser
import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import exchange, parse_responses, serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_hello() -> None:
    hello = load("hello")
    async with serve(hello.handler) as s:
        out = await exchange(s.port, b"PUT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    [(status, _, body)] = parse_responses(out)
    assert status == 200 and body == b"Hello from lowserve: PUT /x\n"


def test_systemd_units_parse() -> None:
    for unit in ("lowserve.service", "lowserve.socket"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(ROOT / "deploy" / unit)
        assert parser.sections()
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(ROOT / "deploy" / "lowserve.service")
    assert service["Service"]["Type"] == "notify"
    assert "--check" in service["Service"]["ExecStartPre"]


async def test_json_api_example() -> None:
    import aiohttp

    api = load("json_api")
    api.ITEMS.clear()
    async with serve(api.handler) as s, aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{s.port}"
        async with session.post(f"{base}/items", json={"name": "ada"}) as resp:
            assert resp.status == 201 and await resp.json() == {"id": 1, "name": "ada"}
        async with session.get(f"{base}/items") as resp:
            assert await resp.json() == [{"id": 1, "name": "ada"}]
        async with session.post(f"{base}/items", data=b"not json") as resp:
            assert resp.status == 400 and await resp.json() == {"error": "the body is not JSON"}
        async with session.get(f"{base}/items/9") as resp:
            assert resp.status == 404 and resp.content_type == "application/json"
        async with session.delete(f"{base}/items/1") as resp:
            assert resp.status == 204
        async with session.put(f"{base}/items") as resp:
            assert resp.status == 405


async def test_sse_example_streams_events() -> None:
    import aiohttp

    sse = load("sse")
    lines = []
    async with (
        serve(sse.handler) as s,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{s.port}/events?n=3") as resp,
    ):
        assert resp.headers["Content-Type"] == "text/event-stream"
        async for line in resp.content:  # arrives as it is written
            lines.append(line.decode().strip())
    assert [ln for ln in lines if ln.startswith("data:")] == ["data: 0", "data: 1", "data: 2"]


async def test_upload_example(tmp_path: Path) -> None:
    import aiohttp

    upload = load("upload")
    upload.UPLOAD_DIR = tmp_path
    upload.MAX_BYTES = 100_000
    async with (
        serve(upload.handler, client_max_size=10**7) as s,
        aiohttp.ClientSession() as session,
    ):
        form = aiohttp.FormData()
        form.add_field("f", b"x" * 50_000, filename="../../etc/evil.bin")
        async with session.post(f"http://127.0.0.1:{s.port}/", data=form) as resp:
            assert resp.status == 200
            [saved] = (await resp.json())["saved"]
        # whatever the client called it, it lands in UPLOAD_DIR and nowhere else
        assert saved["bytes"] == 50_000 and "/" not in saved["name"]
        assert (tmp_path / saved["name"]).stat().st_size == 50_000
        form = aiohttp.FormData()
        form.add_field("f", b"x" * 200_000, filename="big.bin")
        async with session.post(f"http://127.0.0.1:{s.port}/", data=form) as resp:
            assert resp.status == 413
        assert not (tmp_path / "big.bin").exists()


async def test_files_example(tmp_path: Path) -> None:
    files = load("files")
    files.ROOT = tmp_path.resolve()
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    async with serve(files.handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"<h1>home</h1>")
        assert b"Content-Type: text/html" in out
        out = await exchange(
            s.port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert out.startswith((b"HTTP/1.1 403 ", b"HTTP/1.1 404 "))


@pytest.mark.parametrize("name", ["hello", "json_api", "sse", "upload", "files", "chat"])
def test_examples_run_with_the_command(name: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "lowserve", f"examples.{name}:handler", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: examples.{name}:handler is ")
