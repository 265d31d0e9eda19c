"""The layers of docs/architecture.md, as import contracts that can fail.

``lint-imports`` checks the contracts in pyproject.toml (CI runs it too); this test
runs it on the package as it is, and on a copy with one deliberate violation, so a
contract that silently stopped checking would be noticed. It also checks the rule
import-linter cannot say: no import cycle at run time, and type-only cycles only
inside one subpackage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
# import-linter's command, run by this interpreter (its script may not be on PATH).
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [*LINT_IMPORTS, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_contracts_are_kept() -> None:
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout or "broken" not in result.stdout.split("Contracts:")[-1]


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("wire/head.py", "from lowserve.api import request", "Layers"),
        ("conn/state.py", "import lowserve.ws.types", "Layers"),
        ("runner.py", "import lowserve.cli.loader", "Nothing imports the command"),
        ("cli/worker.py", "import click", "without click"),
    ],
)
def test_a_violation_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "lowserve", src / "lowserve")
    target = src / "lowserve" / module
    target.write_text(target.read_text() + f"\n{line}  # deliberate violation\n")
    result = _lint(src)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every module that imports itself back, with one chain showing it."""
    found = []
    for module in sorted(graph.modules):
        if not module.startswith("lowserve"):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                found.append([module, *chain])
    return found


def test_no_runtime_import_cycles() -> None:
    graph = grimp.build_graph("lowserve", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_type_only_cycles_stay_inside_one_subpackage() -> None:
    graph = grimp.build_graph("lowserve")
    for chain in _cycles(graph):
        packages = {m.split(".")[1] for m in chain if m.count(".") >= 2}
        tops = {m for m in chain if m.count(".") == 1}
        assert len(packages) == 1 and not tops, chain
