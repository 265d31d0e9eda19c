"""The C heap of a worker: memory a loop turn frees is kept for the next one.

Bodies, reads and answers over 512 bytes come from the C library's ``malloc``, not
from Python's small-object allocator. glibc gives the top of its heap back to the
system once more than ``M_TRIM_THRESHOLD`` of it is free (128 KiB at start), and
serves a block of ``M_MMAP_THRESHOLD`` or more (128 KiB at start, raised as such
blocks are freed) with a mapping of its own. A loop turn that answers 64 webhooks of
16 KiB frees megabytes at once (each one's read, body and answer): the heap is cut
back, then grown again page by page in the next turn. Measured under ``wrk -c64``
(``bench/run.py``'s post-16k, the server on one core, three runs each, taking
turns): 1.7 page faults and 79.6 µs of server CPU a request with glibc's defaults,
none and 66.2 µs with the thresholds below (req/s 12,316 -> 14,825); hello and
post-1k, which free little per turn, unchanged.

A worker sets both thresholds once, at start (:func:`keep_heap`): blocks under 4 MiB
come from the heap, and up to 8 MiB of it stays mapped while free (what glibc's own
dynamic thresholds settle at once a 4 MiB block has been freed). It is a process-wide
choice, the command's to make and not the library's. Malloc settings already in the
environment (``GLIBC_TUNABLES``, ``MALLOC_*``) are the operator's and are left as
they are; so is any C library other than glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_heap"]

#: Blocks this size or larger get a mapping of their own (glibc's M_MMAP_THRESHOLD).
MMAP_THRESHOLD = 4 * 2**20
#: Free bytes at the heap's top kept mapped (glibc's M_TRIM_THRESHOLD).
TRIM_THRESHOLD = 8 * 2**20

_M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def _tuned_by_environment() -> bool:
    env = os.environ
    return "malloc" in env.get("GLIBC_TUNABLES", "") or any(
        name.startswith("MALLOC_") for name in env
    )


def keep_heap() -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); False, with
    nothing changed, where the C library is not glibc or the environment tunes malloc."""
    if not sys.platform.startswith("linux") or _tuned_by_environment():
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):  # no such name: not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success. The mmap threshold goes first: setting either one
    # turns glibc's dynamic adjustment of both off.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
