"""How many cores this process may use: its CPU affinity, capped by its cgroup's CPU quota.

os.cpu_count() is the host's: in a container given 2 CPUs (docker --cpus 2, a Kubernetes CPU
limit) on a 64-core host it says 64, and a model running 64 intra-op threads on 2 CPUs' worth of
time is throttled to a crawl. Quotas are read from cgroup v2 (cpu.max) or v1
(cpu.cfs_quota_us / cpu.cfs_period_us), on this process's cgroup and every parent; the tightest
wins, rounded down (at least 1).
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@cache
def usable_cores() -> int:
    return cores_within(PROC_CGROUP, CGROUP_ROOT)


def cores_within(proc_cgroup: Path, cgroup_root: Path) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cpu_quota(proc_cgroup, cgroup_root)
    return cores if quota is None else max(1, min(cores, math.floor(quota)))


def _cpu_quota(proc_cgroup: Path, cgroup_root: Path) -> float | None:
    """The tightest CPU quota, in cores, over this process's cgroups and their parents; None if none."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            mount, read = cgroup_root, _v2_quota
        elif "cpu" in controllers.split(","):
            mount, read = cgroup_root / "cpu", _v1_quota
        else:
            continue
        folder = mount / path.lstrip("/")
        for directory in (folder, *folder.parents):
            if directory == mount.parent:
                break
            quota = read(directory)
            if quota is not None:
                quotas.append(quota)
    return min(quotas, default=None)


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
