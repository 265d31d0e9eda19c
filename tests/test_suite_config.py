"""The suite's own promises: a failure nobody awaited fails the test that caused it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.mark.parametrize(
    "body",
    [
        # a client thread that crashes (an IndexError on a zero-byte answer, say)
        "t = threading.Thread(target=lambda: [][0]); t.start(); t.join()",
        # an exception nobody retrieves
        "import gc; exec('class A:\\n    def __del__(self): 1/0'); A(); gc.collect()",
    ],
)
def test_an_exception_the_test_did_not_see_fails_it(tmp_path: Path, body: str) -> None:
    (tmp_path / "test_it.py").write_text(f"import threading\n\ndef test_it():\n    {body}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(PYPROJECT),
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_it.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
