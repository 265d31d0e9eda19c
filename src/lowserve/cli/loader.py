"""Resolve a handler string: ``module:attr``, ``pkg.mod:obj.method`` or ``path/app.py:attr``.

Every way this can fail raises :class:`LoadError` with one line that names what was
tried. An exception raised *while the module itself imports* is not a load error:
it is the user's bug, and it propagates with its traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LoadError", "describe", "load_handler"]


class LoadError(Exception):
    """The handler string cannot be resolved; the message is one line for the user."""


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
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module (or a parent package) does not exist" is ours to report;
        # a missing import *inside* the module is the user's bug and keeps its traceback.
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise LoadError(f"cannot import module '{module_name}': {exc}") from None
        raise


def _is_async_callable(obj: Any) -> bool:
    while isinstance(obj, __import__("functools").partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004
    return call is not None and not inspect.isclass(obj) and inspect.iscoroutinefunction(call)


def load_handler(
    spec: str, *, factory: bool = False, app_dir: str | None = "."
) -> Callable[..., Any]:
    """The async callable named by *spec* (calling it first when *factory*)."""
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
    if factory:
        if not callable(obj):
            raise LoadError(f"'{spec}' is not callable, so it cannot be a --factory")
        obj = obj()
        if inspect.isawaitable(obj):
            obj = asyncio.new_event_loop().run_until_complete(obj)
    if not _is_async_callable(obj):
        raise LoadError(f"'{spec}' is not an async callable (it is {describe(obj)})")
    return obj  # type: ignore[no-any-return]


def describe(obj: Any) -> str:
    """``an int``, ``a function``, ``a Handler instance``… for messages."""
    if inspect.isclass(obj):
        return f"the class {obj.__name__}"
    if inspect.isfunction(obj):
        return "a plain function, not 'async def'"
    name = type(obj).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"
