"""The frame loop's two primitives, as the pure-Python build runs them.

The compiled build does not call this module: ``connection.pxd`` cimports
``_cspeedups.pxd`` under this module's name, so ``speedups.unmask(...)`` and
``speedups.new_message(...)`` in the compiled ``connection.py`` are C functions with
the same contracts (measured in bench/PROFILE.md, "Round 7: WebSocket").

``unmask`` is websockets' ``apply_mask`` (C, SSE2, in websockets' wheels) on two
slices. Timed against the alternatives in pure Python (per call, 34 / 256 /
16,000 bytes): ``apply_mask`` 0.65 / 0.70 / 3.8 µs, an ``int.from_bytes`` XOR
3.9 / 2.8 / 122 µs, a byte loop 12 / 73 / 6,100 µs. Without websockets'
speedups, its own ``apply_mask`` is that ``int.from_bytes`` XOR.
"""

from __future__ import annotations

from typing import Any

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedup ships in websockets' wheels
    from websockets.utils import apply_mask

__all__ = ["new_message", "unmask"]


def unmask(data: bytes, start: int, n: int) -> bytes:
    """The *n* payload bytes at *start* in *data*, unmasked with the 4-byte key just
    before them (the caller guarantees ``4 <= start`` and ``start + n <= len(data)``)."""
    return apply_mask(data[start : start + n], data[start - 4 : start])


#: ``new_message(WSMessage, (type, data, extra))``: a message made without the
#: NamedTuple's ``__new__`` (a Python function); the fields are the tuple's items.
new_message: Any = tuple.__new__
