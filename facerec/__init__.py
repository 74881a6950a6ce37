"""Shared core of the face_detection and feature_extraction services."""

import os

# After each parallel call (a resize, an alignment's warp) OpenCV's pool threads stay runnable for
# 2,000 sched_yield() turns: CPU the requests need, and threads that CpuThreads counted as busy, so
# that up to half of the lone requests' model calls ran on one thread instead of all the cores
# (bench/RESULTS.md). OpenCV reads this once, when cv2 loads (and aborts on an empty value): set
# before any module of the package imports cv2.
if not os.environ.get("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER"):
    os.environ["OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER"] = "0"

__version__ = "3.0.0"
