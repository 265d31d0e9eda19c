"""The two builds (lowserve/_build.py): compiled where setup.py could, pure Python
otherwise or on request (LOWSERVE_PURE=1), the same behaviour either way."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest

from lowserve import _build

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "lowserve"


def _pxd_classes() -> dict[tuple[str, str], set[str]]:
    """Each .pxd's classes and the attributes it declares for them."""
    found: dict[tuple[str, str], set[str]] = {}
    for pxd in sorted(PACKAGE.rglob("*.pxd")):
        module = ".".join(pxd.relative_to(SRC).with_suffix("").parts)
        cls = None
        for line in pxd.read_text().splitlines():
            m = re.match(r"cdef class (\w+)", line)
            if m:
                cls = m.group(1)
                found[module, cls] = set()
                continue
            m = re.match(
                r"\s+cdef (?:public |readonly )?[\w.]+ (\w+)(?![\w(])", line
            )  # not a method
            if m and cls is not None:
                found[module, cls].add(m.group(1))
    return found


def test_each_pxd_declares_its_class_slots() -> None:
    """A .pxd's class has exactly the attributes its .py's __slots__ name (a slot
    missing from the .pxd would fail only the compiled build, at run time)."""
    classes = _pxd_classes()
    assert classes, "no .pxd found"
    for (module, name), declared in classes.items():
        assert module in _build.COMPILED, f"{module} has a .pxd but is not compiled"
        source = (PACKAGE.parent / Path(*module.split("."))).with_suffix(".py").read_text()
        m = re.search(rf"class {name}\b.*?__slots__ = \((.*?)\)", source, re.S)
        assert m is not None, f"{module}.{name} has no __slots__"
        slots = set(re.findall(r'"(\w+)"', m.group(1)))
        assert declared == slots, f"{module}.{name}: .pxd and __slots__ differ"


def _run(code: str, **env: str) -> str:
    import os

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        check=True,
    )
    return out.stdout + out.stderr


def _compiled_here() -> bool:
    return _build.build() == "compiled"


def test_pure_forced_loads_every_module_from_source() -> None:
    out = _run(
        "import lowserve, lowserve._build as b, importlib\n"
        "print(b.build())\n"
        "for m in b.COMPILED: print(importlib.import_module(m).__file__)",
        LOWSERVE_PURE="1",
    )
    lines = out.split("\n")
    assert lines[0] == "pure Python"
    assert all(line.endswith(".py") for line in lines[1:] if line)


def test_build_says_which_modules_run() -> None:
    out = _run(
        "import lowserve, lowserve._build as b, importlib\n"
        "print(b.build())\n"
        "for m in b.COMPILED: print(importlib.import_module(m).__file__)",
        LOWSERVE_PURE="0",
    )
    lines = [line for line in out.split("\n") if line]
    compiled = [line for line in lines[1:] if line.endswith(tuple(EXTENSION_SUFFIXES))]
    if lines[0] == "compiled":
        assert len(compiled) == len(_build.COMPILED)
    else:
        assert lines[0] == "pure Python"
        assert compiled == []


def test_version_names_the_build() -> None:
    out = _run("from lowserve.cli.command import main; main(['--version'])")
    assert out.strip().endswith(f", {_build.build()})"), out


@pytest.mark.skipif(not _compiled_here(), reason="needs the compiled build")
def test_a_stale_compiled_module_gives_way_to_its_source(tmp_path: Path) -> None:
    """An edited .py runs as source, with a warning, rather than its old compiled copy."""
    shutil.copytree(PACKAGE, tmp_path / "lowserve")
    reader = tmp_path / "lowserve" / "conn" / "reader.py"
    reader.write_text(reader.read_text() + "\nEDITED = True\n")
    out = subprocess.run(
        [sys.executable, "-c", "import lowserve.conn.reader as r; print(r.EDITED, r.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
        check=True,
    )
    assert out.stdout.startswith("True ") and out.stdout.strip().endswith("reader.py")
    assert "lowserve.conn.reader: its source changed since it was compiled" in out.stderr
    assert "partly compiled" in _run_in(tmp_path, "import lowserve._build as b; print(b.build())")


@pytest.mark.skipif(not _compiled_here(), reason="needs the compiled build")
def test_a_module_cimporting_a_stale_one_gives_way_too(tmp_path: Path) -> None:
    """The compiled responder takes the compiled recorder's C type (its .pxd cimports
    conn.metrics): with metrics.py edited, both run as source, and a request is counted."""
    assert _build._cimported("lowserve.conn.responder") == ["lowserve.conn.metrics"]
    shutil.copytree(PACKAGE, tmp_path / "lowserve")
    metrics = tmp_path / "lowserve" / "conn" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nEDITED = True\n")
    out = _run_in(
        tmp_path,
        "import lowserve.conn.responder as r, lowserve.conn.metrics as m\n"
        "from lowserve.testing import make_mocked_request\n"
        "from lowserve.web import Response\n"
        "print(r.__file__, m.__file__, m.EDITED)\n"
        "rec = m.RequestMetrics()\n"
        "rec.record(make_mocked_request('GET', '/'), Response(), 0.01)\n"
        "print(rec.requests())",
    )
    files, counts = out.strip().split("\n")
    assert files.split() == [
        str(tmp_path / "lowserve" / "conn" / "responder.py"),
        str(metrics),
        "True",
    ]
    assert counts == "{'GET': [0, 1, 0, 0, 0]}"


@pytest.mark.skipif(not _compiled_here(), reason="needs the compiled build")
def test_a_stale_pipeline_takes_the_connection_to_source(tmp_path: Path) -> None:
    """An edited pipeline.py runs as source, and so does protocol.py, whose compiled
    copy types its pipeline, ending and takeover (its .pxd cimports them); a connection
    serves."""
    assert _build._cimported("lowserve.conn.protocol") == [
        "lowserve.conn.ending",
        "lowserve.conn.pipeline",
        "lowserve.conn.takeover",
    ]
    shutil.copytree(PACKAGE, tmp_path / "lowserve")
    pipeline = tmp_path / "lowserve" / "conn" / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\nEDITED = True\n")
    out = _run_in(
        tmp_path,
        "import lowserve.conn.protocol as p, lowserve.conn.ending as e\n"
        "import lowserve._build as b\n"
        "from lowserve import web\n"
        "print(p.__file__.endswith('.py'), e.__file__.endswith('.py'), b.build())\n"
        "async def h(r): return web.Response(text='OK')\n"
        "class T:\n"
        "    out = []\n"
        "    def write(self, d): self.out.append(bytes(d))\n"
        "    def get_extra_info(self, n, d=None): return d\n"
        "    def is_closing(self): return False\n"
        "import asyncio\n"
        "async def main():\n"
        "    conn = web.Server(h, access_log=None)()\n"
        "    t = T(); conn.connection_made(t)\n"
        "    conn.data_received(b'GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n')\n"
        "    for _ in range(500):  # the answer leaves at the end of a loop iteration\n"
        "        if t.out: break\n"
        "        await asyncio.sleep(0.01)\n"
        "    print(b''.join(t.out).split(b'\\r\\n')[0].decode())\n"
        "asyncio.run(main())\n",
    )
    assert out.split("\n")[:2] == [
        f"True False partly compiled ({len(_build.COMPILED) - 2} of {len(_build.COMPILED)} modules)",
        "HTTP/1.1 200 OK",
    ]


def _run_in(path: Path, code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(path)},
        check=True,
    )
    return out.stdout


def test_compiled_classes_take_interpreted_subclasses() -> None:
    """aiohttp users subclass what lowserve gives them; a compiled class must allow it."""
    for module, name in _pxd_classes():
        cls = getattr(importlib.import_module(module), name)
        sub: type[Any] = type("Sub", (cls,), {"extra": 1})
        assert issubclass(sub, cls) and sub.extra == 1
