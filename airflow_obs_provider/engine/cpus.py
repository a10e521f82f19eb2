"""How many CPUs this process may really use: the least of the machine's count, the CPU affinity
mask and the cgroup CPU quota (a container's ``--cpus`` or a Kubernetes CPU limit).

DuckDB and pyarrow size their thread pools from the machine's count, which inside a container is
the host's: a worker pod limited to 2 CPUs on a 64-core node would start 64 DuckDB threads, each with
its own buffers, and be throttled anyway. Memory per window grows with every thread (a seed
bucket-closing window: 189 MiB peak RSS at 2 threads, 223 MiB at 8, ``obs-etl bench oo-agg``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``/``cfs_period_us``)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus(root: Path = _CGROUP_ROOT) -> int:
    """At least 1; a fractional quota rounds up (1.5 CPUs may keep two threads busy part of the time)."""
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    quota = _cgroup_quota(root)
    if quota is not None:
        counts.append(math.ceil(quota))
    return max(1, min(counts))
