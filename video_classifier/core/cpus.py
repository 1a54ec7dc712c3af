"""The CPU cores this process may use, and torch's threads fitted to them.

os.cpu_count() counts the machine's cores; a container is often given fewer, by an affinity mask (taskset,
docker --cpuset-cpus) or by a CPU quota (cgroups: docker --cpus, a Kubernetes limit, a hosted Space's
2 vCPUs on a larger host). torch starts one thread per core it sees: its pool follows an affinity mask but
not a quota, so under a quota of 2 on a 16-core host it runs 16 threads that take turns on 2 cores' time.
bench/threads.py, a VideoMAE-B clip under a 1-core quota on 2 cores: 4.8 s with one thread, 6.3 s with
torch's own two. fit_threads sets torch's threads to usable_cores() where it uses more, and says so once.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

CGROUP = Path("/sys/fs/cgroup")


def own_cgroups(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """This process's cgroup path per controller ("" for cgroup v2's unified one), from /proc/self/cgroup
    ("0::/system.slice/x", "4:cpu,cpuacct:/docker/y"); {} where it cannot be read. In a container with its
    own cgroup namespace every path is "/"."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return {}
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def quota_cores(root: Path = CGROUP, paths: dict[str, str] | None = None) -> float | None:
    """The cores' worth of CPU time this process's cgroup quota allows (cgroup v2 cpu.max, v1
    cpu.cfs_quota_us over cpu.cfs_period_us, in the cgroup `paths` (own_cgroups) names under `root`, or at
    `root` itself), or None where there is no quota or no cgroup file to read."""
    paths = own_cgroups() if paths is None else paths
    v2 = [root / paths[""].lstrip("/")] if "" in paths else []
    v1 = [root / name / paths.get("cpu", "/").lstrip("/") for name in ("cpu", "cpu,cpuacct")]
    try:
        for folder in [*v2, root]:
            if (folder / "cpu.max").is_file():
                quota, period = (folder / "cpu.max").read_text().split()[:2]
                return None if quota == "max" else int(quota) / int(period)
        for folder in [*v1, root / "cpu", root / "cpu,cpuacct"]:
            if (folder / "cpu.cfs_quota_us").is_file():
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                return None if quota <= 0 else quota / int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):  # unreadable or malformed: no quota known
        return None
    return None


def usable_cores(root: Path = CGROUP, paths: dict[str, str] | None = None) -> int:
    """The cores this process may use: its affinity mask's, capped by a CPU quota rounded up; at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = quota_cores(root, paths)
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def fit_threads(root: Path = CGROUP, paths: dict[str, str] | None = None) -> str | None:
    """torch's threads cut to usable_cores() where it starts more; the one line saying so, or None where
    they already fit (nothing is set then)."""
    cores, threads = usable_cores(root, paths), torch.get_num_threads()
    if threads <= cores:
        return None
    torch.set_num_threads(cores)
    quota = quota_cores(root, paths)
    def count(n: float) -> str:
        return f"{n:g} core{'' if n == 1 else 's'}"

    why = f"a CPU quota of {count(quota)}" if quota and math.ceil(quota) == cores else "its affinity mask"
    return f"threads: {cores} for torch, not {threads}: this process may use {count(cores)} ({why})"
