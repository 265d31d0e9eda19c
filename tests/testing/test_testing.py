"""lowserve.testing: aiohttp.test_utils' shapes, and the pytest plugin's fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web as aioweb

from lowserve import web
from lowserve.testing import RawTestServer, TestClient, TestServer, make_mocked_request

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _echo(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == "/ws":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data.upper())
        return ws
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "body": body.decode(),
            "header": request.headers.get("X-Test"),
            "secure": request.secure,
            "keep_alive": request.keep_alive,
        }
    )


async def test_make_mocked_request_gives_a_request_without_a_socket() -> None:
    req = make_mocked_request("POST", "/p?q=1", {"X-Test": "yes"}, payload=b"body")
    assert req.method == "POST" and req.path == "/p" and req.query["q"] == "1"
    assert req.headers["X-Test"] == "yes" and req.host == "127.0.0.1"  # as aiohttp's mock
    assert await req.read() == b"body"
    resp = await _echo(req)
    assert resp.status == 200
    assert isinstance(resp, web.Response) and resp.body is not None
    assert b'"body": "body"' in resp.body


async def test_make_mocked_request_options() -> None:
    req = make_mocked_request(
        "GET", "/", version=web.HttpVersion10, closing=True, sslcontext=object(), app=None
    )
    assert req.version == web.HttpVersion10 and not req.keep_alive and req.secure
    streamed = web.StreamResponse()
    await streamed.prepare(req)
    await streamed.write(b"abc")
    await streamed.write_eof()
    assert b"".join(req.protocol.written).endswith(b"abc")  # type: ignore[attr-defined]


async def test_raw_test_server_and_client() -> None:
    assert TestServer is RawTestServer
    async with RawTestServer(_echo) as server, TestClient(server) as client:
        assert str(client.make_url("/x")).startswith("http://127.0.0.1:")
        resp = await client.post("/a?b=c", data=b"hi", headers={"X-Test": "1"})
        assert resp.status == 200
        data = await resp.json()
        assert data == {
            "method": "POST",
            "path": "/a",
            "query": {"b": "c"},
            "body": "hi",
            "header": "1",
            "secure": False,
            "keep_alive": True,
        }
        ws = await client.ws_connect("/ws")
        await ws.send_str("shout")
        assert (await ws.receive()).data == "SHOUT"
        await ws.close()


async def test_plugin_fixtures(
    lowserve_server: Callable[..., Awaitable[RawTestServer]],
    lowserve_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server = await lowserve_server(_echo, client_max_size=10)
    client = await lowserve_client(server)
    resp = await client.post("/", data=b"x" * 11)
    assert resp.status == 413  # the server options were applied
    client2 = await lowserve_client(_echo)
    assert (await client2.get("/z")).status == 200
    client3 = await lowserve_client(_echo, server_kwargs={"client_max_size": 10})
    assert (await client3.post("/", data=b"x" * 11)).status == 413


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_a_users_tests_run_with_the_plugin(mode: str) -> None:
    from conftest import _plugin_installed

    plugin = [] if _plugin_installed() else ["-p", "lowserve.testing.plugin"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *plugin,
            "-q",
            "-p",
            "no:cacheprovider",
            "test_hello.py",
            "-o",
            f"asyncio_mode={mode}",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            # Importing TestServer/TestClient into a test module makes pytest no noise.
            "-W",
            "error::pytest.PytestCollectionWarning",
        ],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout and "warning" not in result.stdout


def _transport(sockname: Any, peername: Any = None) -> Any:
    """A transport mock as aiohttp's own tests make them (get_extra_info takes one key)."""
    from unittest import mock

    transport = mock.Mock()
    info = {"sockname": sockname, "peername": peername}
    transport.get_extra_info.side_effect = lambda key: info.get(key)
    return transport


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("GET", "/", {}), {"transport": _transport(("::1", 80, 0, 0), ("::2", 5, 0, 0))}),
        (("GET", "/"), {"transport": _transport("/tmp/s.sock", "")}),
        (("GET", "/"), {"transport": _transport(None)}),
        (("GET", "/", {"Host": "h"}), {"transport": _transport(("10.0.0.1", 81), ("1.2.3.4", 9))}),
        (("GET", "http://example.com:81/abs?q", {"Host": "other"}), {}),
        (("GET", "https://example.com/abs"), {}),
        (("GET", "/a?b=1&b=2"), {}),
        (("POST", "/p", {"Host": "example.org:81", "Cookie": "a=1; b=2"}), {}),
        (("GET", "/"), {"closing": True}),
        (("GET", "/x"), {"version": web.HttpVersion10}),
        (("PUT", "/s"), {"sslcontext": object()}),
        (("GET", "/h", {"X-A": "1", "Content-Type": "text/plain"}), {}),
    ],
)
def test_make_mocked_request_reads_as_aiohttps(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """What a handler reads off a mocked request equals what it reads off aiohttp's."""
    import warnings

    import aiohttp.test_utils

    attrs = [
        "method", "path", "path_qs", "query_string", "host", "scheme", "secure",
        "keep_alive", "version", "url", "raw_path", "content_length", "content_type",
        "can_read_body", "body_exists", "remote",
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp's mock: no running loop
        theirs = aiohttp.test_utils.make_mocked_request(*args, **kwargs)
    ours = make_mocked_request(*args, **kwargs)
    for attr in attrs:
        assert str(getattr(ours, attr)) == str(getattr(theirs, attr)), attr
    assert dict(ours.headers) == dict(theirs.headers)
    assert dict(ours.query) == dict(theirs.query) and dict(ours.cookies) == dict(theirs.cookies)
    if "transport" in kwargs:  # honoured: the request's transport is the one given
        assert ours.transport is kwargs["transport"] is theirs.transport


async def test_responses_prepared_on_a_mocked_request_have_a_server_header() -> None:
    import aiohttp.test_utils

    ours = make_mocked_request("GET", "/")
    theirs = aiohttp.test_utils.make_mocked_request("GET", "/")
    for namespace, req in ((web, ours), (aioweb, theirs)):
        resp = namespace.Response(text="x")
        await resp.prepare(req)
        assert resp.headers["Server"].startswith("Python/")
    assert b"\r\nServer: Python/" in b"".join(ours.protocol.written)  # type: ignore[attr-defined]


_USERS_TESTS = """
def test_plain():
    assert 1 + 1 == 2


def test_asks_for_the_server(lowserve_server):
    pass


def test_asks_for_the_client(lowserve_client):
    pass
"""


def _pip(venv: Path, *args: str) -> None:
    """``pip install`` into *venv*, as pip is configured on this machine (its index and
    find-links); skipped when that cannot give what is asked (no network, no index)."""
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        unreachable = ("No matching distribution", "Could not find a version", "NewConnectionError")
        if any(text in result.stderr for text in unreachable):
            pytest.skip(f"pip cannot install {args[-1]} here: {result.stderr.strip()[-300:]}")
        raise AssertionError(result.stdout + result.stderr)


@pytest.mark.timeout(600)  # a fresh venv and two pip installs: minutes on a loaded machine
def test_the_plugin_loads_without_pytest_asyncio_or_aiohttp(tmp_path: Path) -> None:
    """In a fresh venv with only lowserve, its runtime dependencies and pytest, the
    plugin the install registers lets pytest run, and its fixtures say what is missing."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "lowserve-src"  # a copy: building leaves build/ behind
    shutil.copytree(
        root / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "--no-deps", str(source))
    requires = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from importlib.metadata import requires\n"
            "print('\\n'.join(r for r in requires('lowserve') if 'extra ==' not in r))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    _pip(venv, "pytest", *[r for r in requires if r])
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_users.py").write_text(_USERS_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rE"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    out = result.stdout + result.stderr
    assert "Error while loading plugin" not in out and "ModuleNotFoundError" not in out, out
    assert "1 passed, 2 errors" in out, out
    needs = "needs pytest-asyncio{}: pip install 'lowserve[testing]'"
    assert f"the lowserve_server fixture {needs.format('')}" in out, out
    assert f"the lowserve_client fixture {needs.format(' and aiohttp')}" in out, out
