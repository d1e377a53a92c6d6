"""The model's threads follow the CPUs the process may use: its affinity, capped by a CPU
quota. Each test lays out a cgroup tree as the kernel shows it (files and their contents as
Docker, Kubernetes and systemd write them); docker/smoke_test.sh checks a real `--cpus 1`."""

from __future__ import annotations

import os
from pathlib import Path

from service.cpus import cpu_quota, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))
CONTAINER = "/docker/95e2499fd7f18792ea24334dcf7dfef877e34d50f5e9f58c3d7f41cfe6a8dbfb"
V1_MEMBERSHIP = "".join(
    f"{number}:{controllers}:{CONTAINER}\n"
    for number, controllers in enumerate(["cpu", "cpuacct", "cpuset", "memory", "pids"], 1)
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def v2_tree(tmp_path: Path, limits: dict[str, str], membership: str) -> tuple[Path, Path]:
    """A cgroup v2 mount with `cpu.max` in the folders named by `limits`; the process is in
    `membership`."""
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpuset cpu io memory pids")
    for folder, limit in limits.items():
        write(root / folder / "cpu.max", limit)
    write(tmp_path / "membership", f"0::{membership}")
    return root, tmp_path / "membership"


def v1_docker_tree(tmp_path: Path, quota_us: int) -> tuple[Path, Path]:
    """A cgroup v1 container as Docker makes one: /proc/self/cgroup names the host's paths,
    and each mount's root is the container's own cgroup."""
    root = tmp_path / "cgroup"
    write(root / "cpu" / "cpu.cfs_quota_us", str(quota_us))
    write(root / "cpu" / "cpu.cfs_period_us", "100000")
    write(tmp_path / "membership", V1_MEMBERSHIP)
    return root, tmp_path / "membership"


def test_a_docker_cpus_1_container_on_cgroup_v1_gets_one_thread(tmp_path: Path) -> None:
    root, membership = v1_docker_tree(tmp_path, 100_000)
    assert cpu_quota(root, membership) == 1.0
    assert usable_cpus(root, membership) == 1


def test_no_quota_leaves_the_affinity(tmp_path: Path) -> None:
    root, membership = v1_docker_tree(tmp_path, -1)
    assert cpu_quota(root, membership) is None
    assert usable_cpus(root, membership) == AFFINITY
    root, membership = v2_tree(tmp_path / "v2", {"": "max 100000"}, "/")
    assert cpu_quota(root, membership) is None
    assert usable_cpus(root, membership) == AFFINITY


def test_a_fractional_quota_rounds_up(tmp_path: Path) -> None:
    root, membership = v2_tree(tmp_path, {"": "150000 100000"}, "/")
    assert cpu_quota(root, membership) == 1.5
    assert usable_cpus(root, membership) == min(AFFINITY, 2)
    root, membership = v2_tree(tmp_path / "half", {"": "50000 100000"}, "/")
    assert usable_cpus(root, membership) == 1


def test_a_parent_cgroups_lower_quota_applies(tmp_path: Path) -> None:
    # systemd: a service without a limit of its own, in a slice limited to half a CPU.
    root, membership = v2_tree(
        tmp_path,
        {"": "max 100000", "app.slice": "50000 100000", "app.slice/app.service": "max 100000"},
        "/app.slice/app.service",
    )
    assert cpu_quota(root, membership) == 0.5
    assert usable_cpus(root, membership) == 1


def test_a_quota_above_the_affinity_leaves_the_affinity(tmp_path: Path) -> None:
    root, membership = v2_tree(tmp_path, {"": f"{(AFFINITY + 2) * 100_000} 100000"}, "/")
    assert usable_cpus(root, membership) == AFFINITY


def test_without_cgroups_the_affinity_counts(tmp_path: Path) -> None:
    assert cpu_quota(tmp_path / "none", tmp_path / "no-such-file") is None
    assert usable_cpus(tmp_path / "none", tmp_path / "no-such-file") == AFFINITY
