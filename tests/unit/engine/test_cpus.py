"""The CPUs a process may use: the cgroup quota (v2 and v1) and the affinity mask bound the count."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_obs_provider.engine.cpus import _cgroup_quota, available_cpus


def test_a_v2_quota_bounds_the_count_and_rounds_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota(tmp_path) == 1.5
    assert available_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)), os.cpu_count() or 1)


def test_no_quota_leaves_the_affinity_mask(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(tmp_path) is None
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_a_v1_quota_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path) == 0.5
    assert available_cpus(tmp_path) == 1  # never zero
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no limit"
    assert _cgroup_quota(tmp_path) is None


def test_unreadable_cgroup_files_mean_no_quota(tmp_path: Path) -> None:
    assert _cgroup_quota(tmp_path / "absent") is None
