"""api.mapping: typed keys' repr, compared with aiohttp's own keys."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, Any

import aiohttp.web
import pytest

from lowserve import web


class _Local:
    pass


@pytest.mark.parametrize(
    "t",
    [int, str, _Local, web.BaseRequest, Iterator[int], dict[str, int], Annotated[int, "x"], None],
    ids=repr,
)
@pytest.mark.parametrize("kind", ["RequestKey", "ResponseKey"])
def test_key_repr_as_aiohttps(kind: str, t: Any) -> None:
    ours = getattr(web, kind)("key", t)
    theirs = getattr(aiohttp.web, kind)("key", t)
    assert repr(ours) == repr(theirs)
    assert repr(ours).startswith(f"<{kind}(")


def test_key_repr_module_qualified() -> None:
    key = web.RequestKey("user", web.BaseRequest)
    assert repr(key).endswith(".user, type=lowserve.api.request.BaseRequest)>")
    assert repr(web.ResponseKey("n", int)).endswith(".n, type=int)>")


@pytest.mark.parametrize("kind", ["RequestKey", "ResponseKey"])
def test_key_repr_subscripted(kind: str) -> None:
    """``RequestKey[Iterator[int]]("key")`` shows the type it was subscripted with."""
    ours = getattr(web, kind)[Iterator[int]]("key")
    theirs = getattr(aiohttp.web, kind)[Iterator[int]]("key")
    assert repr(ours) == repr(theirs)
    # 3.10's generic aliases pass isinstance(..., type): both show the bare class there
    args = "[int]" if sys.version_info >= (3, 11) else ""
    assert repr(ours).endswith(f".key, type=collections.abc.Iterator{args})>")
    assert repr(getattr(web, kind)("bare")).endswith(".bare, type=<<Unknown>>)>")
