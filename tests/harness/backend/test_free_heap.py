"""After a burst of ingest the backend gives the heap's free memory back to the system (glibc's
``malloc_trim``), so that its resident memory follows what it stores."""

from __future__ import annotations

import ctypes
import platform

from hoptrace.harness.backend import _free_heap


def _resident_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_freed_holes_between_live_blocks_go_back_to_the_system() -> None:
    assert platform.libc_ver()[0] == "glibc" and _free_heap._TRIM is not None  # as on this project's CI
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(16_000) for _ in range(8_000)]  # 128 MB in blocks glibc carves from the heap
    for block in blocks:
        ctypes.memset(block, 1, 16_000)  # resident
    kept = {*blocks[::50], blocks[-1]}  # live blocks between the holes keep the heap from shrinking
    for block in blocks:
        if block not in kept:
            libc.free(block)
    before = _resident_bytes()
    _free_heap._last = float("-inf")  # as if no trim ran lately
    _free_heap.free_heap()
    after = _resident_bytes()
    for block in kept:
        libc.free(block)
    assert before - after > 60_000_000, (before, after)  # most of the ~125 MB of holes
