"""The cores a process may use: affinity, capped by a container's CPU quota (cgroup v2 or v1)."""

from __future__ import annotations

import os

from facerec.cores import cores_within, usable_cores

AFFINITY = len(os.sched_getaffinity(0))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_no_cgroup_file_means_the_affinity(tmp_path):
    assert cores_within(tmp_path / "missing", tmp_path) == AFFINITY


def test_cgroup_v2_quota_of_the_group_or_a_parent_caps_the_cores(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "0::/kubepods/pod1/container\n")
    root = tmp_path / "fs"
    write(root / "kubepods/pod1/container/cpu.max", "max 100000\n")
    assert cores_within(proc, root) == AFFINITY
    write(root / "kubepods/pod1/cpu.max", "150000 100000\n")  # 1.5 CPUs: 1 thread's worth, rounded down
    assert cores_within(proc, root) == 1
    write(root / "cpu.max", "50000 100000\n")  # half a CPU at the root: still at least 1
    assert cores_within(proc, root) == 1


def test_cgroup_v1_quota_caps_the_cores_and_minus_one_means_none(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    root = tmp_path / "fs"
    write(root / "cpu/docker/abc/cpu.cfs_quota_us", "-1\n")
    write(root / "cpu/docker/abc/cpu.cfs_period_us", "100000\n")
    assert cores_within(proc, root) == AFFINITY
    write(root / "cpu/docker/abc/cpu.cfs_quota_us", "100000\n")
    assert cores_within(proc, root) == 1


def test_this_machine():
    assert 1 <= usable_cores() <= AFFINITY
