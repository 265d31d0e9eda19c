"""The asyncio internals the eager first step relies on, in one place, with a fallback.

:mod:`lowserve.conn.responder` runs a handler's first step from ``data_received``
*as* the connection's task. That needs three things asyncio does not make public:
``asyncio.tasks._enter_task`` and ``_leave_task`` (what a task's own step calls
around the coroutine), and, on Python 3.10/3.11, the ``_current_tasks`` dict (a
cheaper ``current_task``: the function there is Python code reading that dict).

:data:`EAGER` is True only when the hooks exist *and* behave as expected (probed
once at import, on a throwaway loop, in a thread of its own if the importing thread
runs a loop: inside enter/leave, ``current_task()`` is the task; after, it is not),
on Python 3.11 or later, whose ``create_task`` takes the context the eager steps
share with the task. Otherwise — or with ``LOWSERVE_EAGER=0`` in the
environment, which CI uses to run the responder tests both ways — every request is
handed to the connection's task through the event loop: one loop iteration more
per request, nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EAGER", "current_task", "enter_task", "leave_task"]

current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if hasattr(asyncio.current_task, "__code__") and isinstance(
    getattr(asyncio.tasks, "_current_tasks", None), dict
):
    # Python 3.10/3.11: ~40 ns cheaper than calling asyncio.current_task.
    current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]  # noqa: SLF001 (no public API: asyncio.current_task costs ~40 ns more)
else:
    current_task = asyncio.current_task


def _missing(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    raise RuntimeError("asyncio task hooks are not available")


enter_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] = getattr(
    asyncio.tasks, "_enter_task", _missing
)
leave_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] = getattr(
    asyncio.tasks, "_leave_task", _missing
)


def _probe() -> bool:
    """Whether entering and leaving a task by hand works as the responder expects."""
    if enter_task is _missing or leave_task is _missing:
        return False

    async def parked() -> None:
        await asyncio.sleep(3600)

    loop = asyncio.new_event_loop()
    task = loop.create_task(parked())
    try:
        enter_task(loop, task)
        try:
            inside = current_task(loop) is task
        finally:
            leave_task(loop, task)
        return inside and current_task(loop) is None
    except Exception:
        return False
    finally:
        task.cancel()  # run to its end, so no "never awaited" warning follows a failed probe
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()


def _probe_here() -> bool:
    """:func:`_probe`, in a thread of its own when this one runs an event loop.

    Its throwaway loop must run to cancel its task, and a thread that already runs a
    loop (``import lowserve.web`` inside ``async def main``) cannot run another:
    the task and its coroutine would be left pending, and warned of at exit.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _probe()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(_probe()), name="lowserve-probe")
    thread.start()
    thread.join()
    return result == [True]


#: Whether the responder may run a handler's first step outside its task's own step. It
#: also needs ``create_task(context=)`` (Python 3.11), to run those steps in the
#: task's own context: on 3.10, every request takes the fallback.
EAGER: bool = (
    sys.version_info >= (3, 11) and os.environ.get("LOWSERVE_EAGER", "1") != "0" and _probe_here()
)
