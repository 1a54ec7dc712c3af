"""core/cpus.py: the cores a CPU quota allows (cgroup v2 and v1 files, written here as a container has them),
usable cores as the affinity mask capped by the quota, and torch's threads cut to them, said in one line."""

from __future__ import annotations

import os

import pytest
import torch

from video_classifier.core.cpus import fit_threads, own_cgroups, quota_cores, usable_cores


def cgroup(tmp_path, v2: str | None = None, v1: tuple[str, str] | None = None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize("v2, v1, expected", [
    ("200000 100000", None, 2.0),  # docker --cpus 2 on cgroup v2
    ("150000 100000", None, 1.5),
    ("max 100000", None, None),  # no quota
    (None, ("50000", "100000"), 0.5),  # cgroup v1
    (None, ("-1", "100000"), None),
    (None, None, None),  # no cgroup files at all (macOS, Windows)
    ("garbage", None, None),
])
def test_a_quota_is_read_from_cgroup_v2_and_v1(tmp_path, v2, v1, expected):
    """At the cgroup root, as a container with its own cgroup namespace sees its own."""
    assert quota_cores(cgroup(tmp_path, v2, v1), {"": "/", "cpu": "/"}) == expected


def test_the_quota_is_the_processs_own_cgroups(tmp_path):
    """A process in a sub-cgroup (a systemd service, a container without its own namespace): the quota of the
    cgroup /proc/self/cgroup names, not the root's."""
    cgroup(tmp_path, v1=("-1", "100000"))  # the root: no quota
    (tmp_path / "cpu" / "docker" / "abc").mkdir(parents=True)
    (tmp_path / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("150000\n")
    (tmp_path / "cpu" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("9:name=systemd:/\n4:cpu,cpuacct:/docker/abc\n")
    assert own_cgroups(proc) == {"name=systemd": "/", "cpu": "/docker/abc", "cpuacct": "/docker/abc"}
    assert quota_cores(tmp_path, own_cgroups(proc)) == 1.5
    (tmp_path / "system.slice").mkdir()
    (tmp_path / "system.slice" / "cpu.max").write_text("300000 100000\n")
    proc.write_text("0::/system.slice\n")
    assert quota_cores(tmp_path, own_cgroups(proc)) == 3.0


def test_usable_cores_are_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    root = {"": "/"}
    (tmp_path / "none").mkdir()
    assert usable_cores(tmp_path / "none", root) == affinity
    assert usable_cores(cgroup(tmp_path, "50000 100000"), root) == 1  # half a core: one thread, not none
    many = tmp_path / "many"
    many.mkdir()
    assert usable_cores(cgroup(many, f"{(affinity + 8) * 100000} 100000"), root) == affinity  # over the mask


def test_torch_threads_are_cut_to_a_quota_and_said_once(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(max(2, before))
        line = fit_threads(cgroup(tmp_path, "100000 100000"), {"": "/"})  # one core's worth of time
        assert torch.get_num_threads() == 1
        assert line == f"threads: 1 for torch, not {max(2, before)}: this process may use 1 core (a CPU quota of 1 core)"
        assert fit_threads(tmp_path, {"": "/"}) is None  # already fitted: nothing set, nothing said
    finally:
        torch.set_num_threads(before)
