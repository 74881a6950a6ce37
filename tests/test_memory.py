"""Freed heap memory goes back to the system: what keeps a worker's RSS at rest honest."""

from __future__ import annotations

import subprocess
import sys

from facerec import memory
from facerec.settings import PROJECT_ROOT

# ~190 MB in 64 KiB blocks (under glibc's mmap threshold: from the heap), all freed but the top
# one, which stops glibc from shrinking the heap by itself.
FRAGMENTED_HEAP = """
import time
from facerec import memory

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

blocks = [bytearray(64 * 1024) for _ in range(3000)]
del blocks[:-1]
freed = rss_mb()
memory.start_trimming(0.05)
time.sleep(0.5)
print(freed, rss_mb())
"""


def test_freed_heap_memory_is_given_back():
    result = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    freed, trimmed = map(float, result.stdout.split())
    assert freed > 150, "the freed blocks stay in the heap until trimmed"
    assert trimmed < freed - 150


def test_off_at_zero():
    assert memory.start_trimming(0) is None
