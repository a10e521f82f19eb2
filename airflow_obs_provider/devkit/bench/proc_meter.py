"""CPU and memory of whole process trees, read from ``/proc`` (Linux), for ``obs-etl bench airflow``.

CPU of a tree = the ``cutime + cstime`` of the root (children it has reaped) plus ``utime + stime +
cutime + cstime`` of every live descendant: a process that ends is counted in its parent's ``c*time``
once the parent reaps it. The root's own ``utime + stime`` (the bench polling and sampling) is left out.

Postgres backends are not in the tree (the postmaster forks them), so a sampler thread reads, every
``interval`` seconds, the CPU of each backend whose process title (``postgres: USER DB ...``) names one
of the watched databases and keeps the last value it saw per backend: a backend's work after the last
sample before it exits is missed (at most ``interval`` seconds of it).

The same sampler records ``VmHWM`` (peak RSS) and the largest private memory seen of processes whose
title matches a pattern: Airflow 3's task runner names itself ``airflow worker -- <task instance id>``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Airflow 3's task runner process (airflow.sdk.execution_time.task_runner.startup) after setproctitle.
AIRFLOW_TASK_TITLE = re.compile(r"^airflow worker -- ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    start_ticks: int  # with pid, identifies a process across pid reuse
    own_ticks: int  # utime + stime
    children_ticks: int  # cutime + cstime (reaped children)


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:  # gone, or not ours to read
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]),
                    int(fields[13]) + int(fields[14]))


def read_title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def read_peak_rss_mib(pid: int) -> float | None:
    """``VmHWM``: the process's peak resident set so far, in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def read_private_mib(pid: int) -> float | None:
    """``Private_Clean + Private_Dirty`` of ``smaps_rollup``: memory no other process shares (a forked task
    runner's RSS also counts the pages it still shares with the process it was forked from), in MiB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            kib = sum(int(line.split()[1]) for line in fh if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except OSError:
        return None
    return kib / 1024.0


def all_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def descendants(root: int, stats: Iterable[ProcStat]) -> list[ProcStat]:
    children: dict[int, list[ProcStat]] = {}
    for st in stats:
        children.setdefault(st.ppid, []).append(st)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root``'s reaped children and of every live descendant (not ``root``'s own)."""
    stats = [st for pid in all_pids() if (st := read_stat(pid))]
    me = next((st for st in stats if st.pid == root), None)
    ticks = (me.children_ticks if me else 0) + sum(d.own_ticks + d.children_ticks for d in descendants(root, stats))
    return ticks / CLOCK_TICKS


class ProcessSampler:
    """A background thread: CPU of Postgres backends of ``databases``, peak RSS of titled processes."""

    def __init__(self, databases: Iterable[str] = (), title: re.Pattern[str] = AIRFLOW_TASK_TITLE,
                 interval: float = 0.2):
        self.databases = set(databases)
        self.title = title
        self.interval = interval
        self._backend_ticks: dict[tuple[int, int], int] = {}  # (pid, start) -> last CPU ticks seen
        self.peak_rss_mib: dict[str, float] = {}  # title's first group (task instance id) -> largest VmHWM seen
        self.peak_private_mib: dict[str, float] = {}  # the same key -> largest private memory sampled
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proc-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def watch_database(self, name: str) -> None:
        with self._lock:
            self.databases.add(name)

    def sample(self) -> None:
        for pid in all_pids():
            title = read_title(pid)
            if title.startswith("postgres: "):
                # "postgres: USER DB HOST(PORT) STATE", or with cluster_name "postgres: NAME: USER DB ..."
                parts = title.split()[1:4]
                if any(p in self.databases for p in parts) and (st := read_stat(pid)):
                    with self._lock:
                        self._backend_ticks[(pid, st.start_ticks)] = st.own_ticks
            elif m := self.title.match(title):
                key, peak, private = m.group(1), read_peak_rss_mib(pid), read_private_mib(pid)
                with self._lock:
                    if peak is not None:
                        self.peak_rss_mib[key] = max(peak, self.peak_rss_mib.get(key, 0.0))
                    if private is not None:
                        self.peak_private_mib[key] = max(private, self.peak_private_mib.get(key, 0.0))

    def postgres_cpu_seconds(self) -> float:
        """Cumulative CPU of every watched backend seen so far: take differences between two calls."""
        self.sample()
        with self._lock:
            return sum(self._backend_ticks.values()) / CLOCK_TICKS

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


@dataclass(frozen=True)
class CpuReading:
    tree_s: float
    postgres_s: float
    at: float  # time.monotonic()


def read_cpu(root: int, sampler: ProcessSampler) -> CpuReading:
    return CpuReading(tree_cpu_seconds(root), sampler.postgres_cpu_seconds(), time.monotonic())
