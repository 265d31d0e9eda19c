"""The probe behind lowserve.conn.tasks.EAGER: it says yes only for hooks that work."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from lowserve.conn import tasks


def test_the_hooks_work_here() -> None:
    assert tasks._probe() is True  # CPython 3.10 to 3.12 all have them


def test_missing_hooks_mean_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "enter_task", tasks._missing)
    assert tasks._probe() is False
    loop = asyncio.new_event_loop()
    with pytest.raises(RuntimeError, match="not available"):
        tasks._missing(loop, None)  # type: ignore[arg-type]
    loop.close()


def test_hooks_that_misbehave_mean_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def enter_without_effect(loop: Any, task: Any) -> None:
        pass

    def leave_without_effect(loop: Any, task: Any) -> None:
        pass

    monkeypatch.setattr(tasks, "enter_task", enter_without_effect)
    monkeypatch.setattr(tasks, "leave_task", leave_without_effect)
    assert tasks._probe() is False  # current_task() was not the task inside

    def enter_raises(loop: Any, task: Any) -> None:
        raise RuntimeError("changed in a later Python")

    monkeypatch.setattr(tasks, "enter_task", enter_raises)
    assert tasks._probe() is False


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_importing_inside_a_running_loop_leaves_no_warning(loop: str) -> None:
    """The import-time probe runs its throwaway loop to the end even when the importing
    thread already runs one (``import lowserve.web`` inside ``async def main``)."""
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "async def main():\n"
        "    import lowserve.web\n"
        "    from lowserve.conn import tasks\n"
        "    assert tasks.EAGER is (sys.version_info >= (3, 11))\n"
        f"{'import uvloop; uvloop.run(main())' if loop == 'uvloop' else 'asyncio.run(main())'}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LOWSERVE_EAGER"}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_probe_inside_a_running_loop_runs_in_a_thread() -> None:
    async def main() -> tuple[bool, int]:
        import threading

        before = threading.active_count()
        return tasks._probe_here(), threading.active_count() - before

    answer, threads_left = asyncio.run(main())
    assert answer is True and threads_left == 0
