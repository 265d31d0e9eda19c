"""The probe behind lowserve.conn.tasks.EAGER: it says yes only for hooks that work."""

from __future__ import annotations

import asyncio
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
