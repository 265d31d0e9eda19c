"""The compiled build: Cython compiles the hot path's modules where it can.

The modules named in ``src/lowserve/_build.py`` (``COMPILED``) are plain Python; an
optional ``.pxd`` beside one declares its classes' attribute types (a Cython
"augmenting" declaration, read only by Cython). Built without a working C compiler,
without Cython, on an interpreter other than CPython, or with ``LOWSERVE_PURE=1`` in
the environment, the package is the same ``.py`` files alone: the pure-Python build,
which behaves the same. ``lowserve --version`` says which one is installed.

Everything else about the package is in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def _compiled_modules() -> tuple[str, ...]:
    """``COMPILED`` from src/lowserve/_build.py, read without importing the package."""
    tree = ast.parse((SRC / "lowserve" / "_build.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            modules = ast.literal_eval(node.value)
            assert isinstance(modules, tuple)
            return modules
    raise RuntimeError("src/lowserve/_build.py has no COMPILED")


def _source_digest(module: str) -> str:
    """What a compiled module was built from (its .py and .pxd), as _build checks it."""
    base = SRC / Path(*module.split("."))
    digest = hashlib.sha1()
    for path in (base.with_suffix(".py"), base.with_suffix(".pxd")):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _pure_reason() -> str | None:
    if os.environ.get("LOWSERVE_PURE", "") not in ("", "0"):
        return "LOWSERVE_PURE is set"
    if platform.python_implementation() != "CPython":
        return f"{platform.python_implementation()} runs the pure-Python build"
    try:
        import Cython  # noqa: F401
    except ImportError:
        return "Cython is not installed"
    return None


class OptionalBuildExt(build_ext):
    """Build the extensions, or none of them: a compiler that fails leaves the
    pure-Python build, with one warning, rather than a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing or failing compiler, in whatever words
            self._fall_back(exc)
            return
        self._write_record()

    def _fall_back(self, exc: BaseException) -> None:
        sys.stderr.write(
            f"WARNING: lowserve's compiled modules were not built ({exc}); "
            "installing the pure-Python build\n"
        )
        for ext in self.extensions:  # no half-compiled package
            path = Path(self.get_ext_fullpath(ext.name))
            if path.exists():
                path.unlink()

    def _write_record(self) -> None:
        """``lowserve/_compiled.py``: each compiled module and the digest of its source,
        so that an edited .py is run as source rather than its stale compiled copy."""
        lines = ['"""Written by setup.py: the modules compiled, and their sources\' digests."""']
        lines.append("")
        lines.append("SOURCES = {")
        for ext in self.extensions:
            lines.append(f"    {ext.name!r}: {_source_digest(ext.name)!r},")
        lines.append("}")
        text = "\n".join(lines) + "\n"
        targets = {Path(self.build_lib) / "lowserve" / "_compiled.py"}
        if self.inplace:
            targets = {SRC / "lowserve" / "_compiled.py"}
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def _extensions() -> list[object]:
    reason = _pure_reason()
    if reason is not None:
        sys.stderr.write(f"lowserve: pure-Python build ({reason})\n")
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    extensions = [
        Extension(module, [str(Path("src", *module.split(".")).with_suffix(".py"))])
        for module in _compiled_modules()
    ]
    return list(
        cythonize(
            extensions,
            build_dir="build/cython",  # the generated C stays out of src/
            quiet=True,
            compiler_directives={
                "language_level": 3,
                # Annotations are not enforced: a wrong type behaves as the .py does.
                "annotation_typing": False,
                "binding": True,  # functions keep their Python signatures
                "embedsignature": True,
            },
        )
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
