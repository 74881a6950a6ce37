"""Give freed heap memory back to the system every few seconds (glibc's malloc_trim).

A worker's threads allocate and free photos, request bodies and model inputs; glibc keeps what its
heaps freed for reuse, so a worker's RSS at rest rose and fell with the layout its last requests
left (bench/RESULTS.md, soak: -6.4% and +5.8% in two runs, with flat peaks under load).
malloc_trim(0) returns the free pages of every heap, but not the free top of the heaps glibc makes
for other threads, which kept the last large blocks: so every thread allocates from the one main
heap (M_ARENA_MAX 1; the GIL serialises most allocations anyway), whose top it does return. Run
every few seconds, its cost is the page faults of taking some of that memory again (as jemalloc
and mimalloc return unused pages after a delay).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

log = logging.getLogger(__name__)


_M_ARENA_MAX = -8  # glibc's malloc.h


def start_trimming(period_s: float) -> threading.Thread | None:
    """One heap for every thread from now on, and a daemon thread calling malloc_trim(0) every
    period_s seconds; None if off or not glibc. Call it before the process starts its threads."""
    if period_s <= 0:
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS: their allocators return memory their own way
        log.info("no glibc malloc_trim here: freed memory is returned as the allocator does")
        return None
    libc.mallopt(_M_ARENA_MAX, 1)
    trim.argtypes = [ctypes.c_size_t]

    def trim_forever() -> None:
        while True:
            time.sleep(period_s)
            trim(0)  # ctypes releases the GIL: request threads go on meanwhile

    thread = threading.Thread(target=trim_forever, name="malloc-trim", daemon=True)
    thread.start()
    return thread
