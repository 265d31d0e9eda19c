"""lowserve.testing's RawTestServer and TestClient, side by side with aiohttp.test_utils'.

One scenario, written once the way a test written for aiohttp uses them, runs against
both; what it observes must be equal. Then what only lowserve's take (server options
to start_server, a fixed port, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from types import ModuleType
from typing import Any

import aiohttp
import aiohttp.test_utils
import pytest
from aiohttp import web as aiohttp_web

import lowserve.testing
from lowserve import web as lowserve_web

LIBRARIES = {
    "aiohttp": (aiohttp_web, aiohttp.test_utils),
    "lowserve": (lowserve_web, lowserve.testing),
}


async def _observe(web: ModuleType, test_utils: ModuleType) -> dict[str, Any]:
    cancelled = asyncio.Event()

    async def handler(request: Any) -> Any:
        if request.path == "/set":
            resp = web.Response(text="set")
            resp.set_cookie("sid", "abc")
            return resp
        if request.path == "/cookie":
            return web.Response(text=request.cookies.get("sid", "none"))
        if request.path == "/boom":
            raise RuntimeError("kaboom")
        if request.path == "/hang":
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        if request.path == "/ws":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            msg = await ws.receive()
            await ws.send_str("echo:" + msg.data)
            await ws.close()
            return ws
        return web.Response(text=f"{request.method} {request.path_qs}")

    out: dict[str, Any] = {}
    server = test_utils.RawTestServer(handler)
    with pytest.raises(TypeError), server:
        pass
    out["started before"] = server.started
    async with test_utils.TestClient(server) as client:
        out["started"] = server.started
        url = client.make_url("/a?b=1")
        out["url"] = (type(url).__name__, str(url).replace(str(client.port), "PORT"))
        with pytest.raises(AssertionError):
            client.make_url("http://example.org/")
        async with client.get("/x") as resp:
            out["entered"] = (resp.status, await resp.text())
        out["released on exit"] = resp.closed
        resp = await client.post("/y?q=1", data=b"z")
        out["awaited"] = (resp.status, await resp.text())
        for method in ("put", "patch", "delete", "head", "options"):
            async with getattr(client, method)("/m") as resp:
                out[method] = (resp.status, await resp.text())
        await client.get("/set")
        out["cookie from 127.0.0.1 kept"] = await (await client.get("/cookie")).text()
        resp = await client.get("/boom")
        body = await resp.text()
        out["500"] = (resp.status, "Traceback" in body, "kaboom" in body)
        with contextlib.suppress(asyncio.TimeoutError):
            await client.get("/hang", timeout=aiohttp.ClientTimeout(total=0.2))
        await asyncio.wait_for(cancelled.wait(), 5)
        out["handler cancelled on disconnect"] = True
        async with client.ws_connect("/ws") as ws:
            await ws.send_str("hi")
            out["ws"] = (await ws.receive()).data
        out["ws closed on exit"] = ws.closed
        out["app"] = client.app
        out["handler"] = type(server.handler).__name__
        out["server"] = client.server is server
    out["after close"] = (server.closed, server.port)
    await client.close()  # a second close does nothing
    await server.close()
    return out


async def test_a_scenario_observes_the_same_as_under_aiohttp() -> None:
    seen = {name: await _observe(*libs) for name, libs in LIBRARIES.items()}
    assert seen["lowserve"] == seen["aiohttp"]
    assert seen["lowserve"]["cookie from 127.0.0.1 kept"] == "abc"  # not vacuous


@pytest.mark.parametrize("name", list(LIBRARIES))
async def test_skip_url_asserts_and_a_fixed_port(name: str) -> None:
    web, test_utils = LIBRARIES[name]

    async def handler(request: Any) -> Any:
        return web.Response(text=request.path)

    port = test_utils.unused_port()
    async with test_utils.RawTestServer(handler, port=port, skip_url_asserts=True) as server:
        assert server.port == port
        assert str(server.make_url("/p")) == f"http://127.0.0.1:{port}/p"
        assert str(server.make_url("/p?q=%41")) == f"http://127.0.0.1:{port}/p?q=A"


async def test_start_server_takes_server_options_and_tls(tmp_path: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def echo(request: lowserve_web.BaseRequest) -> lowserve_web.Response:
        return lowserve_web.Response(body=await request.read())

    server = lowserve.testing.RawTestServer(echo)
    await server.start_server(ssl=server_ctx, client_max_size=10)
    async with lowserve.testing.TestClient(server, connector=None) as client:
        assert client.make_url("/").scheme == "https"
        resp = await client.post("/", data=b"x" * 11, ssl=client_ctx)
        assert resp.status == 413  # client_max_size reached the Server
        resp = await client.post("/", data=b"x" * 10, ssl=client_ctx)
        assert resp.status == 200 and await resp.read() == b"x" * 10
    assert server.closed


def test_the_client_wants_a_test_server() -> None:
    with pytest.raises(TypeError, match="TestServer"):
        lowserve.testing.TestClient(object())  # type: ignore[arg-type]
