"""Give freed heap memory back to the system every few seconds (glibc's malloc_trim).

A worker's threads allocate and free photos, request bodies and model inputs; glibc keeps what its
heaps freed for reuse, so a worker's RSS at rest rose and fell with the layout its last requests
left (bench/RESULTS.md, soak: -6.4% and +5.8% in two runs, with flat peaks under load).
malloc_trim(0) returns the free pages of every heap, but not the free top of the heaps glibc makes
for other threads, which kept the last large blocks: so every thread allocates from the one main
heap (M_ARENA_MAX 1; the GIL serialises most allocations anyway), whose top it does return. Run
every few seconds, its cost is the page faults of taking some of that memory again (as jemalloc
and mimalloc return unused pages after a delay).

Since the trim gives the memory back, glibc need not do it on every free: left to itself it
shrank the heap's top after each face_detection request (the letterbox canvas, the detector's
4.9 MB input blob and its resize came to just over its dynamic trim threshold) and faulted the
same ~7 MB in again on the next, ~1,800 page faults and several ms of CPU a request. Blocks up
to 32 MiB therefore come from the heap (M_MMAP_THRESHOLD at glibc's ceiling) and its top is
kept up to 64 MiB (M_TRIM_THRESHOLD) until the next trim.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

log = logging.getLogger(__name__)


# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling on 64-bit systems; larger blocks are mapped and unmapped
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def start_trimming(period_s: float) -> threading.Thread | None:
    """One heap for every thread from now on, kept between trims, and a daemon thread calling
    malloc_trim(0) every period_s seconds; None if off or not glibc. Call it before the process
    starts its threads."""
    if period_s <= 0:
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS: their allocators return memory their own way
        log.info("no glibc malloc_trim here: freed memory is returned as the allocator does")
        return None
    libc.mallopt(_M_ARENA_MAX, 1)
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    trim.argtypes = [ctypes.c_size_t]

    def trim_forever() -> None:
        while True:
            time.sleep(period_s)
            trim(0)  # ctypes releases the GIL: request threads go on meanwhile

    thread = threading.Thread(target=trim_forever, name="malloc-trim", daemon=True)
    thread.start()
    return thread
