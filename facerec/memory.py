"""Give freed heap memory back to the system every few seconds (glibc's malloc_trim).

A worker's threads allocate and free photos, request bodies and model inputs; glibc keeps what its
per-thread heaps freed for reuse and returns memory only from the top of a heap, so a worker's RSS
at rest rose and fell with the layout its last requests left (bench/RESULTS.md, soak: -6.4% and
+5.8% in two runs, with flat peaks under load). malloc_trim(0) returns the free pages of every
heap, so RSS shows the memory in use. Run every few seconds, its cost is the page faults of taking
some of that memory again (as jemalloc and mimalloc return unused pages after a delay).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

log = logging.getLogger(__name__)


def start_trimming(period_s: float) -> threading.Thread | None:
    """A daemon thread calling malloc_trim(0) every period_s seconds; None if off or not glibc."""
    if period_s <= 0:
        return None
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl, macOS: their allocators return memory their own way
        log.info("no glibc malloc_trim here: freed memory is returned as the allocator does")
        return None
    trim.argtypes = [ctypes.c_size_t]

    def trim_forever() -> None:
        while True:
            time.sleep(period_s)
            trim(0)  # ctypes releases the GIL: request threads go on meanwhile

    thread = threading.Thread(target=trim_forever, name="malloc-trim", daemon=True)
    thread.start()
    return thread
