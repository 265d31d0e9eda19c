"""Per-request and per-response state: the ``MutableMapping`` both classes are.

aiohttp's requests and responses are dicts for the handler's own data; the dict is
made on first use. Two of them are equal only if they are the same object. Typed
keys (:class:`RequestKey`, :class:`ResponseKey`) are recommended, as in aiohttp: a
plain string key warns (:class:`NotAppKeyWarning`) the first time it is set.

For the type checker, a request is a ``MutableMapping[str | RequestKey[Any], Any]`` and a
response a ``MutableMapping[str | ResponseKey[Any], Any]`` (aiohttp's declarations);
``request[RequestKey[T](...)]`` is a ``T``. Those ``__getitem__``/``__setitem__``
overloads are declared on each class for mypy only; the methods that run are here.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar, get_args

__all__ = ["NotAppKeyWarning", "RequestKey", "ResponseKey", "StateMapping"]

_T = TypeVar("_T")


class NotAppKeyWarning(UserWarning):
    """A request or response was given a plain string key (aiohttp's warning)."""


@functools.total_ordering
class _Key(Generic[_T]):
    """A typed key for request or response state, named after the module that made it."""

    __slots__ = ("__orig_class__", "_name", "_t")

    def __init__(self, name: str, t: type[_T] | None = None) -> None:
        frame = inspect.currentframe()
        module = "__main__"
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                module = frame.f_globals.get("__name__", module)
                break
            frame = frame.f_back
        self._name = f"{module}.{name}"
        self._t = t

    def __lt__(self, other: object) -> bool:
        return self._name < other._name if isinstance(other, _Key) else True

    def __repr__(self) -> str:
        """As aiohttp's: a class by its dotted name (a builtin's bare), any other type
        (a generic alias such as ``Iterator[int]``) by its repr."""
        t: Any = self._t
        if t is None:  # RequestKey[T]("name"): T is the subscripted class's argument
            t = next(iter(get_args(getattr(self, "__orig_class__", None))), None)
        if t is None:
            shown = "<<Unknown>>"
        elif not isinstance(t, type):
            shown = repr(t)
        elif t.__module__ == "builtins":
            shown = t.__qualname__
        else:
            shown = f"{t.__module__}.{t.__qualname__}"
        return f"<{type(self).__name__}({self._name}, type={shown})>"


class RequestKey(_Key[_T]):
    """A typed key for ``request[key]`` (aiohttp's ``web.RequestKey``)."""

    __slots__ = ()


class ResponseKey(_Key[_T]):
    """A typed key for ``response[key]`` (aiohttp's ``web.ResponseKey``)."""

    __slots__ = ()


_K = TypeVar("_K", bound=_Key[Any])


class StateMapping(MutableMapping["str | _K", Any], Generic[_K]):
    """A lazily created ``_state`` dict behind the mapping methods; *_K* is the typed key
    class (``RequestKey[Any]`` or ``ResponseKey[Any]``)."""

    __slots__ = ()

    _state: dict[str | _K, Any] | None
    #: The key class that sets state without a warning, and the other keys (strings,
    #: or the other class's keys) warned of.
    _key_class: ClassVar[type[_Key[Any]]] = _Key
    _seen_str_keys: ClassVar[set[object]] = set()

    def _dict(self) -> dict[str | _K, Any]:
        if self._state is None:
            self._state = {}
        return self._state

    def __getitem__(self, key: str | _K) -> Any:
        return self._dict()[key]

    def __setitem__(self, key: str | _K, value: Any) -> None:
        if not isinstance(key, self._key_class) and key not in self._seen_str_keys:
            self._seen_str_keys.add(key)
            warnings.warn(
                f"It is recommended to use web.{self._key_class.__name__} instances for keys.",
                NotAppKeyWarning,
                stacklevel=2,
            )
        self._dict()[key] = value

    def __delitem__(self, key: str | _K) -> None:
        del self._dict()[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[str | _K]:
        return iter(self._dict())

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __bool__(self) -> bool:
        return True
