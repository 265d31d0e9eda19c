"""The pytest plugin (entry point ``lowserve``): fixtures for a raw server and a client.

    async def test_hello(lowserve_client):
        client = await lowserve_client(handler)
        resp = await client.get("/")
        assert resp.status == 200

``lowserve_server(handler, **options)`` starts a :class:`~lowserve.testing.RawTestServer`;
``lowserve_client(handler_or_server, *, server_kwargs=None, **session_options)`` a
:class:`~lowserve.testing.TestClient` (aiohttp's client: ``lowserve[testing]``), with
*server_kwargs* for the server it makes from a handler, as ``aiohttp_client`` has. Both
are closed after the test. They are pytest-asyncio fixtures, so they work in its
``auto`` and ``strict`` modes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from . import RawTestServer, TestClient

__all__ = ["lowserve_client", "lowserve_server"]


@pytest_asyncio.fixture
async def lowserve_server() -> AsyncIterator[Callable[..., Awaitable[RawTestServer]]]:
    """A factory: ``await lowserve_server(handler, **options)`` serves *handler*."""
    servers: list[RawTestServer] = []

    async def start(handler: Any, **options: Any) -> RawTestServer:
        server = RawTestServer(handler, **options)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest_asyncio.fixture
async def lowserve_client() -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    """A factory: ``await lowserve_client(handler_or_server, server_kwargs=None,
    **session_options)`` gives a started client."""
    clients: list[TestClient] = []

    async def start(
        target: Any, *, server_kwargs: dict[str, Any] | None = None, **session_options: Any
    ) -> TestClient:
        server = (
            target
            if isinstance(target, RawTestServer)
            else RawTestServer(target, **(server_kwargs or {}))
        )
        client = TestClient(server, **session_options)
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
