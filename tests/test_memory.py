"""Freed heap memory goes back to the system: what keeps a worker's RSS at rest honest."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import requests

from facerec import memory
from facerec.settings import PROJECT_ROOT
from tests.conftest import PACKAGE_PHOTOS

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


# A face_detection request's large blocks (letterbox canvas, resize, the detector's input blob),
# allocated and freed again and again, then left to the trim.
REQUEST_BLOCKS = """
import resource, sys, time
from facerec import memory

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

def request():
    blocks = [bytearray(size * 2**20) for size in (1, 4, 5)]
    del blocks

if sys.argv[1] == "trimming":
    memory.start_trimming(float(sys.argv[2]))
request()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    request()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
kept = rss_mb()
time.sleep(float(sys.argv[2]) * 3)
print(faults, kept, rss_mb())
"""


def run_script(script: str, *args: str) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [float(value) for value in result.stdout.split()]


def test_freed_heap_memory_is_given_back():
    freed, trimmed = run_script(FRAGMENTED_HEAP)
    assert freed > 150, "the freed blocks stay in the heap until trimmed"
    assert trimmed < freed - 150


def test_large_blocks_are_reused_until_the_trim_gives_them_back():
    faults, kept, trimmed = run_script(REQUEST_BLOCKS, "trimming", "0.2")
    assert faults < 100, "the 10 MB of each request come from pages the heap kept"
    assert kept - trimmed > 8, "the trim gives them back"


def test_without_trimming_glibc_faults_them_in_again():
    """What the thresholds avoid: glibc alone shrinks the heap's top after every 'request'."""
    faults, _, _ = run_script(REQUEST_BLOCKS, "glibc", "0")
    assert faults > 20 * 2000


def test_off_at_zero():
    assert memory.start_trimming(0) is None


# A worker's start-up objects (imports, the app, its models) after gunicorn's post_worker_init hook.
FROZEN_AFTER_START = """
import gc, runpy
hooks = runpy.run_path("gunicorn.conf.py")
made_at_start = [[index] for index in range(200_000)]
before = gc.get_freeze_count()
hooks["post_worker_init"](None)
print(before, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_workers_keep_their_start_up_objects_out_of_full_collections():
    # Unfrozen, a worker's full collections walked all of them mid-request: ~50 ms (bench/RESULTS.md).
    for service in ("face_detection", "feature_extraction"):
        result = subprocess.run(
            [sys.executable, "-c", FROZEN_AFTER_START],
            cwd=PROJECT_ROOT / service,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": str(PROJECT_ROOT)},
        )
        assert result.returncode == 0, result.stderr
        before, frozen, still_walked = (int(value) for value in result.stdout.split())
        assert before == 0
        assert frozen > 200_000
        assert still_walked < 1_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def jpeg_uri(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(cv2.imencode(".jpg", image)[1].tobytes()).decode()


def test_a_failed_item_does_not_keep_the_batchs_photos(detection_service, api):
    """Each failure was kept with its traceback, whose frames held every decoded photo of the
    request in a cycle that only the garbage collector frees, and an idle worker never ran it."""
    yao = cv2.imread(str(PACKAGE_PHOTOS / "yaoming.jpg"))
    large = jpeg_uri(cv2.resize(yao, (3000, 3700), interpolation=cv2.INTER_CUBIC))  # 33 MB decoded
    blank = jpeg_uri(np.full((3700, 3000, 3), 128, np.uint8))
    items = [{"id": f"large-{i}", "image": large} for i in range(12)] + [{"id": "blank", "image": blank}]
    workers = detection_service.worker_pids()
    before = {pid: rss_mb(pid) for pid in workers}
    report = requests.post(api + "/update-samples", json=items, timeout=300).json()
    assert len(report["success"]) == 12 and report["fail"] == ["blank"]
    time.sleep(12)  # the workers trim their heap every 5 s
    grown = {pid: rss_mb(pid) - before[pid] for pid in workers}
    assert max(grown.values()) < 100, f"MB kept per worker: {grown}"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_enrolment_holds_one_detector_batch_of_photos_at_a_time(start_detection):
    """All of a request's photos were decoded before any was detected: 100 photos of 40 Mpx, which
    a 32 MiB body can hold, would take 12 GB. A worker of its own, so that its peak is this request's."""
    service = start_detection("enrol-peak")
    [worker] = service.worker_pids()
    yao = cv2.imread(str(PACKAGE_PHOTOS / "yaoming.jpg"))
    photo = jpeg_uri(cv2.resize(yao, (3000, 3700), interpolation=cv2.INTER_CUBIC))  # 33 MB decoded
    before = peak_rss_mb(worker)
    items = [{"id": f"p{i}", "image": photo} for i in range(16)]  # 530 MB of pixels in all
    assert len(requests.post(service.url + "/update-samples", json=items, timeout=300).json()["success"]) == 16
    assert peak_rss_mb(worker) - before < 250, "more than a few photos decoded at once"
