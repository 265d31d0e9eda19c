"""lowserve.cli.logconfig: --log-config as JSON, YAML or INI keeps lowserve's own loggers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from commandline import APP, StderrLines, free_port, get, lowserve, wait_serving

_DICT = {
    "version": 1,
    "formatters": {"f": {"format": "CFG %(name)s: %(message)s"}},
    "handlers": {
        "h": {"class": "logging.StreamHandler", "formatter": "f", "stream": "ext://sys.stderr"}
    },
    "root": {"handlers": ["h"], "level": "INFO"},
}

_INI = textwrap.dedent(
    """
    [loggers]
    keys=root
    [handlers]
    keys=h
    [formatters]
    keys=f
    [logger_root]
    level=INFO
    handlers=h
    [handler_h]
    class=StreamHandler
    formatter=f
    args=(sys.stderr,)
    [formatter_f]
    format=CFG %(name)s: %(message)s
    """
)


def _write(directory: Path, suffix: str, config: dict[str, object] | None = None) -> Path:
    """The same configuration (:data:`_DICT`, or *config*) as a ``.json``, ``.yaml`` or
    ``.ini`` file."""
    path = directory / f"log{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(config or _DICT))
    elif suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(config or _DICT))
    else:
        assert config is None
        path.write_text(_INI)
    return path


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".ini"])
def test_every_format_keeps_the_supervisor_worker_and_access_lines(
    tmp_path: Path, suffix: str
) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    config = _write(tmp_path, suffix)
    port = free_port()
    proc = lowserve("myapp:handler", "--port", str(port), "--log-config", str(config), cwd=tmp_path)
    stderr = StderrLines(proc)
    try:
        wait_serving(port, proc)
        stderr.wait_for("serving on", 20)
        assert get(port, "/logged")[0] == 200
        stderr.wait_for("GET /logged", 10)  # the access log, written by the worker
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    lines = stderr.join()
    assert code == 0, lines
    assert all(line.startswith("CFG lowserve") for line in lines), lines
    assert any(f"serving on http://127.0.0.1:{port}" in line for line in lines), lines
    assert any(line.startswith("CFG lowserve.worker: stopped") for line in lines), lines
    assert any(line.startswith("CFG lowserve.access: 127.0.0.1 ") for line in lines), lines


_PROBE = """
import logging, sys
import lowserve.web, lowserve.cli.worker  # their loggers exist before the config
from lowserve.cli.logconfig import load_log_config
other = logging.getLogger("thirdparty")
load_log_config(sys.argv[1])
names = ["lowserve", "lowserve.access", "lowserve.server", "lowserve.worker", "thirdparty"]
print(" ".join(n for n in names if logging.getLogger(n).disabled))
"""


def _disabled(config: Path) -> list[str]:
    """The loggers that are disabled after *config* is applied, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".ini"])
def test_no_format_disables_existing_loggers_by_default(tmp_path: Path, suffix: str) -> None:
    assert _disabled(_write(tmp_path, suffix)) == []


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_disable_existing_loggers_spares_lowserves_unless_named(
    tmp_path: Path, suffix: str
) -> None:
    """``disable_existing_loggers: true`` disables the others; lowserve's own stay on.
    A lowserve logger the config names is the config's to set (here: quieter)."""
    config = {**_DICT, "disable_existing_loggers": True}
    assert _disabled(_write(tmp_path, suffix, config)) == ["thirdparty"]
    named = {**config, "loggers": {"lowserve.access": {"level": "CRITICAL"}}}
    path = _write(tmp_path, suffix, named)
    code = (
        "import logging, sys, lowserve.web\n"
        "from lowserve.cli.logconfig import load_log_config\n"
        "load_log_config(sys.argv[1])\n"
        "access = logging.getLogger('lowserve.access')\n"
        "assert not access.disabled and access.level == logging.CRITICAL\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_a_config_that_is_not_a_mapping_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from commandline import run_once

    (tmp_path / "myapp.py").write_text(APP)
    config = tmp_path / "log.json"
    config.write_text("[1, 2]")
    result = run_once("myapp:handler", "--check", "--log-config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"Error: --log-config {config}: ValueError: the file holds a list, not a mapping\n"
    )
