"""Every example runs: the handler modules serve, the systemd units parse."""

from __future__ import annotations

import configparser
import gzip
import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from conftest import exchange, parse_responses, serve

ROOT = Path(__file__).resolve().parents[2]
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


async def test_files_example_keeps_to_its_root_through_links(tmp_path: Path) -> None:
    files = load("files")
    files.ROOT = root = (tmp_path / "site").resolve()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"TOP SECRET")
    (outside / "secret.txt.gz").write_bytes(gzip.compress(b"TOP SECRET"))
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "index.html").symlink_to(outside / "secret.txt")
    (root / "a.txt").write_bytes(b"plain a")
    (root / "a.txt.gz").symlink_to(outside / "secret.txt.gz")
    (root / "inner.txt").symlink_to(root / "a.txt")  # a link inside the root is fine
    (root / "out").symlink_to(outside)
    async with serve(files.handler) as s:

        async def get(target: bytes, extra: bytes = b"") -> tuple[int, dict[str, str], bytes]:
            out = await exchange(
                s.port,
                b"GET %b HTTP/1.1\r\nHost: a\r\n%bConnection: close\r\n\r\n" % (target, extra),
            )
            [answer] = parse_responses(out)
            assert b"SECRET" not in out and gzip.compress(b"TOP SECRET") not in out
            return answer

        for target in (b"/sub", b"/sub/", b"/sub/index.html", b"/out/secret.txt"):
            assert (await get(target))[0] == 404, target
        status, headers, body = await get(b"/a.txt", b"Accept-Encoding: gzip\r\n")
        assert status == 200 and "content-encoding" not in headers and body == b"plain a"
        assert (await get(b"/inner.txt"))[2] == b"plain a"


HOSTILE_PATHS = [
    b"/../../etc/passwd",
    b"/%2e%2e/%2e%2e/etc/passwd",
    b"/..%2f..%2fetc%2fpasswd",
    b"/..\\..\\etc\\passwd",
    b"/%252e%252e/%252e%252e/etc/passwd",
    b"/%00",
    b"/a%00b/c",
    b"/%ff%fe",
    b"/" + b"a" * 5000,
    b"/" + b"a/" * 2500,
]
BAD_NUMBERS = [b"abc", b"-1", b"+1", b"1_0", b"1e3", b"%D9%A1", b"%00", b"", b"9" * 5000]


def _upload(filename: bytes) -> bytes:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="%b"\r\n\r\nhi\r\n--B--\r\n'
        % filename
    )
    return (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body)
    )


def _hostile(name: str) -> list[bytes]:
    """Requests for example *name* that must all be answered 4xx (hello: 200)."""
    gets = [b"/items/%b" % n for n in BAD_NUMBERS if n] if name == "json_api" else []
    gets += [b"/events?n=%b" % n for n in [*BAD_NUMBERS, b"101", b"1%201"]] if name == "sse" else []
    gets += [b"/items" + p for p in HOSTILE_PATHS] if name == "json_api" else []
    gets += [b"/ws"] if name == "chat" else []
    out = [b"GET %b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % t for t in gets]
    if name == "json_api":  # JSON nested past the interpreter's recursion limit
        deep = b"[" * 200_000
        out.append(
            b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b"
            % (len(deep), deep)
        )
    out += [b"GET %b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % p for p in HOSTILE_PATHS]
    if name == "upload":
        names = [b"..", b".", b"a/..", b"x" * 300, b"a\x00b", b"there.txt"]  # there: 409
        out += [_upload(n) for n in names]
        out.append(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        )
    return out


@pytest.mark.parametrize("name", ["hello", "json_api", "sse", "upload", "files", "chat"])
async def test_hostile_requests_are_4xx_and_log_no_error(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "lowserve")
    module = load(name)
    module.ROOT = module.UPLOAD_DIR = tmp_path.resolve()
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    (tmp_path / "there.txt").write_text("here first")
    if name == "json_api":
        module.ITEMS.clear()
        # "/items/+1" and "/items/%D9%A1" (an Arabic-Indic 1) must not reach it
        module.ITEMS[1] = {"id": 1, "name": "one"}
    statuses = []
    async with serve(module.handler, client_max_size=10**6) as s:
        for raw in _hostile(name):
            out = await exchange(s.port, raw)
            statuses.append((int(out.split(b" ", 2)[1]), raw[:30] + b"..." + raw[-90:]))
    wrong = [
        (st, raw)
        for st, raw in statuses
        if not (400 <= st < 500 or (name == "hello" and st == 200))
    ]
    assert not wrong
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


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
