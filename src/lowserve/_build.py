"""Which build runs: the compiled hot path, or the same modules as plain Python.

``setup.py`` compiles the modules in :data:`COMPILED` with Cython where it can,
and records in ``lowserve/_compiled.py`` the digest of each one's source (its
``.py`` and ``.pxd``). A compiled module sits beside its ``.py``, and Python's import
prefers it; the finder installed by :func:`install` (from ``lowserve/__init__.py``,
before any of those modules is imported) loads the ``.py`` instead when:

* ``LOWSERVE_PURE`` is set (to anything but ``0``) in the environment: the whole
  pure-Python build, e.g. to compare or to test both builds on one install;
* the compiled module is stale: its ``.py`` or ``.pxd`` changed since it was built
  (an editable checkout being edited), said once as a warning;
* no record says it was built from these sources;
* a compiled module its ``.pxd`` cimports (``from lowserve.x cimport ...``) runs as
  source: the compiled copy needs that module's C types.

Both builds behave the same; :func:`build` names the one running (``lowserve
--version`` and the start-up line show it).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ExtensionFileLoader, ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["COMPILED", "build", "install", "pure_forced"]

#: The modules setup.py compiles (read by setup.py as this literal tuple).
COMPILED = (
    "lowserve.api.streams",
    "lowserve.conn.ending",
    "lowserve.conn.metrics",
    "lowserve.conn.output",
    "lowserve.conn.pipeline",
    "lowserve.conn.protocol",
    "lowserve.conn.reader",
    "lowserve.conn.responder",
    "lowserve.conn.takeover",
    "lowserve.wire.codings",
    "lowserve.wire.errors",
    "lowserve.wire.framing",
    "lowserve.wire.head",
    "lowserve.wire.headers",
    "lowserve.ws.connection",
)

_PACKAGE = Path(__file__).resolve().parent


def pure_forced() -> bool:
    """``LOWSERVE_PURE`` asks for the pure-Python build."""
    return os.environ.get("LOWSERVE_PURE", "") not in ("", "0")


def _recorded() -> dict[str, str]:
    try:
        from ._compiled import SOURCES  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return {}
    sources: dict[str, str] = SOURCES
    return sources


def _digest(module: str) -> str:
    base = _PACKAGE.joinpath(*module.split(".")[1:])
    digest = hashlib.sha1()
    for path in (base.with_suffix(".py"), base.with_suffix(".pxd")):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


class _Choice:
    """Per compiled module, whether its compiled copy is used (decided once)."""

    def __init__(self) -> None:
        self._decided: dict[str, bool] = {}
        self._record: dict[str, str] | None = None

    def compiled(self, module: str, extension: str | None) -> bool:
        if module not in self._decided:
            self._decided[module] = self._decide(module, extension)
        return self._decided[module]

    def _decide(self, module: str, extension: str | None) -> bool:
        if extension is None or pure_forced():
            return False
        if self._record is None:
            self._record = _recorded()
        built_from = self._record.get(module)
        if built_from is None:
            return False
        if built_from != _digest(module):
            warnings.warn(
                f"{module}: its source changed since it was compiled, so the source runs "
                "(rebuild: pip install -e .)",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        return all(self.compiled(dep, _extension_of(dep)) for dep in _cimported(module))


_choice = _Choice()


class _SourceWhenPure:
    """A meta-path finder for :data:`COMPILED`: the ``.py`` where the compiled copy
    is not to be used (see the module docstring)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in COMPILED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.origin is None:
            return spec
        if not isinstance(spec.loader, ExtensionFileLoader):
            return spec
        if _choice.compiled(name, spec.origin):
            return spec
        source = Path(spec.origin).parent / (name.rpartition(".")[2] + ".py")
        return importlib.util.spec_from_file_location(name, source)


_finder = _SourceWhenPure()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _cimported(module: str) -> list[str]:
    """The compiled modules whose C types *module*'s ``.pxd`` cimports."""
    pxd = _PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".pxd")
    if not pxd.exists():
        return []
    names = re.findall(r"^from (lowserve[\w.]*) cimport", pxd.read_text(), re.M)
    return [name for name in names if name in COMPILED]


def _extension_of(module: str) -> str | None:
    base = _PACKAGE.joinpath(*module.split(".")[1:])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return str(candidate)
    return None


def build() -> str:
    """``compiled``, ``pure Python``, or ``partly compiled (n of m modules)``."""
    used = sum(_choice.compiled(m, _extension_of(m)) for m in COMPILED)
    if used == len(COMPILED):
        return "compiled"
    if used == 0:
        return "pure Python"
    return f"partly compiled ({used} of {len(COMPILED)} modules)"
