"""Per-request and per-response state: the ``MutableMapping`` both classes are.

aiohttp's requests and responses are dicts for the handler's own data; the dict is
made on first use. Two of them are equal only if they are the same object.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["StateMapping"]


class StateMapping(MutableMapping[str, Any]):
    """A lazily created ``_state`` dict behind the mapping methods."""

    __slots__ = ()

    _state: dict[str, Any] | None

    def _dict(self) -> dict[str, Any]:
        if self._state is None:
            self._state = {}
        return self._state

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._dict()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._dict()[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __bool__(self) -> bool:
        return True
