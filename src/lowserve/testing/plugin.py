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

Every install of lowserve registers this plugin, so it loads without its optional
dependencies (pytest-asyncio, aiohttp): a project that has neither runs its tests as
before, and a test that asks for one of these fixtures fails, saying what to install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import pytest

from . import RawTestServer, TestClient

__all__ = ["lowserve_client", "lowserve_server"]

_EXTRAS = {"pytest_asyncio": "pytest-asyncio", "aiohttp": "aiohttp"}


def _absent(*modules: str) -> list[str]:
    """The distributions of *modules* that are not installed."""
    return [_EXTRAS[m] for m in modules if importlib.util.find_spec(m) is None]


def _explain(fixture: str, absent: list[str]) -> NoReturn:
    pytest.fail(
        f"the {fixture} fixture needs {' and '.join(absent)}: pip install 'lowserve[testing]'",
        pytrace=False,
    )


def _fixture(*needs: str) -> Callable[[Callable[..., Any]], Any]:
    """pytest-asyncio's fixture decorator; without pytest-asyncio, a plain fixture of the
    same name that fails, naming what is missing of pytest-asyncio and *needs*."""

    def decorate(fn: Callable[..., Any]) -> Any:
        try:
            import pytest_asyncio
        except ImportError:

            def unavailable() -> NoReturn:
                _explain(fn.__name__, _absent("pytest_asyncio", *needs))

            unavailable.__doc__ = fn.__doc__
            return pytest.fixture(name=fn.__name__)(unavailable)
        return pytest_asyncio.fixture(fn)

    return decorate


@_fixture()
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


@_fixture("aiohttp")
async def lowserve_client() -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    """A factory: ``await lowserve_client(handler_or_server, server_kwargs=None,
    **session_options)`` gives a started client."""
    if absent := _absent("aiohttp"):
        _explain("lowserve_client", absent)
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
