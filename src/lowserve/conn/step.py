"""A handler's first step: its coroutine run until it returns or first waits.

The compiled build replaces :func:`first` by a C function of the same shape
(``_cstep.pxd``, cimported as this module by ``responder.pxd``) that gets the return
value from ``PyIter_Send`` without the ``StopIteration`` this version catches.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["IN_C", "first"]

#: Whether :func:`first` is the C function (``_cstep.pxd``): False here. Where it is
#: not, the responder runs the same step inline: a call of this module's :func:`first`
#: cost the pure-Python build ~150-170 instructions a request (callgrind, CPython 3.11:
#: hello 57,598 -> 57,427, post-1k 94,021 -> 93,877).
IN_C = False


def first(coro: Coroutine[Any, Any, Any], resume: Callable[[Any, Any], Any]) -> Any:
    """Send *coro* its first ``None``: what it returned if it finished, else
    ``resume(coro, what_it_yielded)``. What it raises propagates."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return stop.value
    return resume(coro, pending)
