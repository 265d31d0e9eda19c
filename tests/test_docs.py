"""The docs site: generated pages are fresh, and ``mkdocs build --strict`` passes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generated_pages_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "docs/gen.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "command" / "index.html").exists()


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(path: Path) -> list[str]:
    """The fenced code blocks of a Markdown file."""
    return FENCE.findall(path.read_text())


def pip_installs(block: str) -> list[list[str]]:
    """The arguments of each ``pip install`` in a shell block (commands split at
    ``&&``, ``;`` and ``|``; comments dropped)."""
    commands: list[list[str]] = []
    for line in block.splitlines():
        if "pip" not in line:
            continue  # (and Python's quotes are not a shell's)
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word not in ("&&", ";", "|", "||"):
                command.append(word)
                continue
            for i in range(len(command) - 1):
                if command[i].endswith("pip") and command[i + 1] == "install":
                    commands.append(command[i + 2 :])
            command = []
    return commands


def test_pip_install_splits_commands_and_drops_comments() -> None:
    block = "python3 -m venv v && v/bin/pip install /x 'y[z]'  # pip install lowserve\nls\n"
    assert pip_installs(block) == [["/x", "y[z]"]]


def test_no_doc_installs_lowserve_from_the_package_index() -> None:
    """lowserve is not published: every ``pip install`` of it in a code block names a
    checkout, a wheel or a ``file://`` URL (``-e .`` in the repository's own README)."""
    bare = re.compile(r"lowserve(\[[\w,]+\])?(\s*[<>=~!].*)?", re.I)
    found, wrong = 0, []
    for path in DOCS:
        for block in code_blocks(path):
            for args in pip_installs(block):
                for arg in args:
                    if "lowserve" in arg.lower() or arg.startswith("."):
                        found += 1
                    if bare.fullmatch(arg):
                        wrong.append(f"{path.relative_to(ROOT)}: pip install {' '.join(args)}")
    assert wrong == []
    assert found >= 4  # index.md, deployment.md, testing.md and README's -e .
