"""A user's tests of examples/hello.py, as they are written with lowserve.testing.

Run them with ``python -m pytest examples/test_hello.py`` (pytest-asyncio, in its
``auto`` or ``strict`` mode, and ``pip install 'lowserve[testing]'``).
"""

import pytest
from hello import handler

from lowserve.testing import TestClient, TestServer, make_mocked_request


@pytest.mark.asyncio
async def test_handler_in_memory() -> None:
    """A unit test: no socket, the handler called with a mocked request."""
    resp = await handler(make_mocked_request("POST", "/things"))
    assert resp.status == 200
    assert resp.text == "Hello from lowserve: POST /things\n"


@pytest.mark.asyncio
async def test_over_a_real_socket(lowserve_client) -> None:  # type: ignore[no-untyped-def]
    """An end-to-end test: a server on a loopback port, aiohttp's client against it."""
    client = await lowserve_client(handler)
    resp = await client.get("/hello?x=1")
    assert resp.status == 200
    assert await resp.text() == "Hello from lowserve: GET /hello\n"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.asyncio
async def test_with_the_classes() -> None:
    """The same, as tests written for ``aiohttp.test_utils`` do it: only the import
    changes (``from aiohttp.test_utils import TestClient, TestServer``)."""
    async with TestClient(TestServer(handler)) as client:
        resp = await client.get("/classes")
        assert resp.status == 200
        assert await resp.text() == "Hello from lowserve: GET /classes\n"
