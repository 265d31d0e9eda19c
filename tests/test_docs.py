"""The docs site: generated pages are fresh, and ``mkdocs build --strict`` passes."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
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


def _reference_rows() -> dict[str, list[str]]:
    """The command reference's table, by flag: [variable, default, meaning]."""
    rows = {}
    for line in (ROOT / "docs" / "reference" / "command.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`--"):
            rows[cells[0].split(" / ")[0].strip("`")] = cells[1:]
    return rows


def test_command_reference_shows_each_default_as_it_is_typed() -> None:
    """Defaults the command composes (--host, --port) and zeros are shown, not left
    blank; a repeatable option's patterns are listed, not a Python tuple."""
    rows = _reference_rows()
    assert len(rows) > 40
    defaults = {flag: row[1] for flag, row in rows.items()}
    assert defaults["--host"] == "`127.0.0.1`"
    assert defaults["--port"] == "`8080`"
    assert defaults["--max-requests"] == "`0`"
    assert defaults["--max-requests-jitter"] == "`0`"
    assert defaults["--limit-concurrency"] == "`0`"
    assert defaults["--reload-include"] == "`*.py`"
    assert defaults["--reload-exclude"] == "`.*`, `*.py[cod]`, `*.sw.*`, `~*`"
    assert defaults["--unix"] == ""  # no default: nothing shown
    for flag, (_, default, meaning) in rows.items():
        assert "[default:" not in meaning, flag
        assert not default.startswith(("`(", "`[")), (flag, default)


def test_log_config_help_names_every_format_it_reads() -> None:
    meaning = _reference_rows()["--log-config"][2]
    for suffix in (".json", ".yaml", ".yml", ".ini", ".conf", "dictConfig", "fileConfig"):
        assert suffix in meaning, suffix


@pytest.mark.timeout(30)
def test_readme_hello_example_listens_on_the_port_in_PORT() -> None:
    """README's line that serves examples/hello.py on another port, as written (with a
    free port, and this venv's Python)."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"`PORT=(\d+) \.venv/bin/python (examples/hello\.py)`", readme)
    assert command is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert str(port) != command.group(1)
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, command.group(2)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b"Hello from lowserve" in data, data
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
