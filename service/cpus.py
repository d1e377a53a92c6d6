"""How many CPUs this process may use: what the model's threads default to.

Two limits apply. Affinity (a cpuset, `taskset`) says which CPUs the process may run on; a
CPU quota (Docker's `--cpus`, a Kubernetes CPU limit, systemd's `CPUQuota`) says how much
time it gets on them. Docker and Kubernetes set only the quota and leave affinity at every
CPU of the host, so affinity alone counts the host's CPUs: on a 64-core node a container
limited to 2 CPUs would run the model on 64 threads, and even 2 threads under a 1-CPU quota
spend each period's quota early and are held off the CPU for the rest of it
(docs/performance.md). The quota is read from the process's own cgroup and its ancestors,
cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`, `cpu.cfs_period_us`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")


def usable_cpus(root: Path = CGROUP_ROOT, membership: Path = MEMBERSHIP) -> int:
    """The CPUs this process may use: its affinity, capped by its CPU quota rounded up (a
    quota of 1.5 CPUs keeps two threads busy for three quarters of the time)."""
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
    else:  # macOS: no affinity, no cgroups
        affinity = os.cpu_count() or 1
    quota = cpu_quota(root, membership)
    return affinity if quota is None else max(1, min(affinity, math.ceil(quota)))


def cpu_quota(root: Path = CGROUP_ROOT, membership: Path = MEMBERSHIP) -> float | None:
    """The CPU time the process's cgroups allow, in CPUs (the lowest along its path), or
    None where no quota is set or there are no cgroups."""
    quotas = [q for folder in _cpu_cgroups(root, membership) if (q := _quota(folder)) is not None]
    return min(quotas, default=None)


def _cpu_cgroups(root: Path, membership: Path) -> list[Path]:
    """The cgroup folders whose CPU limits apply to this process: its own and every parent,
    in the v2 hierarchy and the v1 `cpu` one. Inside a container the paths that
    /proc/self/cgroup names are the host's and the container's own cgroup is the mount's
    root, so the root is always among them."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return []
    folders = []
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: at the root, or beside the v1 hierarchies (hybrid)
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
        elif "cpu" in controllers.split(","):
            base = root / "cpu"
        else:
            continue
        folder = base / path.lstrip("/")
        while folder != base and folder.is_relative_to(base):
            folders.append(folder)
            folder = folder.parent
        folders.append(base)
    return [folder for folder in folders if folder.is_dir()]


def _quota(folder: Path) -> float | None:
    """The quota set in one cgroup folder, in CPUs, or None."""
    try:
        if (folder / "cpu.max").is_file():
            # "max 100000" (none) or "50000 100000" (half a CPU)
            quota, period = (folder / "cpu.max").read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        if (folder / "cpu.cfs_quota_us").is_file():
            quota = int((folder / "cpu.cfs_quota_us").read_text())  # -1: none
            period = int((folder / "cpu.cfs_period_us").read_text())
            return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None
    return None
