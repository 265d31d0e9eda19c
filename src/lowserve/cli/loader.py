"""Resolve a handler string: ``module:attr``, ``pkg.mod:obj.method`` or ``path/app.py:attr``.

Every way this can fail raises :class:`LoadError` with one line that names what was
tried. An exception raised *while the user's module imports* (or in a factory) is
the user's bug: :class:`UserCodeError` carries its traceback, cut to the user's own
frames (no importlib, click or lowserve frames).

User code runs only where the handler is loaded: once in each worker, and in the
``--check`` process, never in the supervisor. An async factory is awaited on the
event loop that will serve (:func:`load_handler` is a coroutine).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LoadError", "UserCodeError", "describe", "load_handler"]


class LoadError(Exception):
    """The handler string cannot be resolved; the message is one line for the user."""


class UserCodeError(LoadError):
    """The user's module (or factory) raised; the message is its traceback, user frames only."""

    def __init__(self, what: str, exc: BaseException) -> None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        tb = traceback.TracebackException.from_exception(exc)
        frames = [
            f
            for f in tb.stack
            if not f.filename.startswith(here)
            and "importlib" not in f.filename
            and not f.filename.startswith("<frozen")
        ]
        tb.stack = traceback.StackSummary.from_list(frames)
        text = "".join(tb.format()).rstrip()
        super().__init__(f"{what} raised an exception:\n{text}")


def _import(module_name: str) -> ModuleType:
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise LoadError(f"cannot import file '{module_name}': no such file")
        name = path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise LoadError(f"cannot import file '{module_name}'")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise UserCodeError(f"importing '{module_name}'", exc) from None
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module (or a parent package) does not exist" is ours to report;
        # a missing import *inside* the module is the user's bug, shown with its frames.
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise LoadError(f"cannot import module '{module_name}': {exc}") from None
        raise UserCodeError(f"importing '{module_name}'", exc) from None
    except Exception as exc:  # SyntaxError, and anything the module raises as it runs
        raise UserCodeError(f"importing '{module_name}'", exc) from None


def _is_async_callable(obj: Any) -> bool:
    while isinstance(obj, __import__("functools").partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004
    return call is not None and not inspect.isclass(obj) and inspect.iscoroutinefunction(call)


def find(spec: str, app_dir: str | None = ".") -> Any:
    """The object *spec* names (importing its module), not yet checked."""
    module_name, sep, attrs = spec.rpartition(":")
    if not sep or not module_name or not attrs:
        raise LoadError(f"handler must look like module:attribute, got '{spec}'")
    if app_dir is not None:
        path = str(Path(app_dir).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    module = _import(module_name)
    obj: Any = module
    walked = module_name
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            kind = "module" if walked == module_name else "object"
            raise LoadError(f"{kind} '{walked}' has no attribute '{attr}'") from None
        walked = f"{walked}:{attr}" if walked == module_name else f"{walked}.{attr}"
    return obj


async def load_handler(
    spec: str, *, factory: bool = False, app_dir: str | None = "."
) -> Callable[..., Any]:
    """The async callable named by *spec*; with *factory*, what calling it returns
    (awaited on the running loop when the factory is async)."""
    obj = find(spec, app_dir)
    if factory:
        if not callable(obj):
            raise LoadError(
                f"'{spec}' is {describe(obj)}, not callable, so it cannot be a --factory"
            )
        required = _required_parameters(obj)
        if required:
            raise LoadError(
                f"'{spec}' takes arguments ({', '.join(required)}); a --factory is called with none"
            )
        try:
            made = obj()
            if inspect.isawaitable(made):
                made = await made
        except Exception as exc:
            raise UserCodeError(f"the factory '{spec}'", exc) from None
        if not _is_async_callable(made):
            raise LoadError(
                f"the factory '{spec}' returned {describe(made)}, not an async callable"
            )
        return made  # type: ignore[no-any-return]
    if not _is_async_callable(obj):
        hint = ""
        if inspect.isfunction(obj) and not _required_parameters(obj):
            hint = "; if it returns the handler, add --factory"
        raise LoadError(f"'{spec}' is not an async callable (it is {describe(obj)}){hint}")
    return obj  # type: ignore[no-any-return]


def _required_parameters(obj: Any) -> list[str]:
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def describe(obj: Any) -> str:
    """``an int``, ``a function``, ``a Handler instance``… for messages."""
    if inspect.isclass(obj):
        return f"the class {obj.__name__}"
    if inspect.isfunction(obj):
        return "a plain function, not 'async def'"
    name = type(obj).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"
