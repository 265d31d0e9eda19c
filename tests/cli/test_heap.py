"""cli.heap: a worker's glibc heap thresholds, checked in a fresh interpreter by where
glibc puts a 3 MiB block (a mapping of its own, or the heap)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc only",
)

_PROBE = r"""
import ctypes
from lowserve.cli.heap import keep_heap

class MallInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def mapped(size):
    # whether glibc served a block of *size* with a mapping of its own
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    after = libc.mallinfo2().hblks
    libc.free(block)
    return after - before

import sys
# first, before any block is freed (glibc raises its mmap threshold to each mapped
# block it frees, unless told a threshold)
done = keep_heap() if sys.argv[1] == "keep" else None
print(done, mapped(3 * 2**20), mapped(8 * 2**20))
"""


def _probe(keep: bool, env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    clean.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "keep" if keep else "-"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split()


def test_a_worker_keeps_blocks_under_4_mib_on_its_heap() -> None:
    """With glibc's defaults a 3 MiB block is mapped on its own (and unmapped when
    freed); after keep_heap() it comes from the heap, and an 8 MiB one still does not."""
    assert _probe(False, {}) == ["None", "1", "1"]
    assert _probe(True, {}) == ["True", "0", "1"]


@pytest.mark.parametrize(
    "env",
    [{"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=262144"}, {"MALLOC_ARENA_MAX": "2"}],
)
def test_malloc_settings_in_the_environment_are_left_alone(env: dict[str, str]) -> None:
    """The operator's malloc settings stand: keep_heap() changes nothing."""
    assert _probe(True, env) == ["False", "1", "1"]
