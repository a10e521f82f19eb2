"""CPU of whole process trees and task-process memory, read from /proc."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from airflow_obs_provider.devkit.bench.proc_meter import ProcessSampler, read_stat, tree_cpu_seconds

# burns CPU until its own CPU time reaches the given seconds (CPU, not wall time: a loaded machine only slows it)
BURN = "import sys, time\nwhile time.process_time() < float(sys.argv[1]): pass\n"
TASK_ID = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
# names itself like Airflow 3's task runner, holds 64 MiB of its own, says so, then waits for stdin to close
TITLED = ("import sys, setproctitle\n"
          f"setproctitle.setproctitle('airflow worker -- {TASK_ID}')\n"
          "held = bytearray(64 * 2**20)\n"
          "for i in range(0, len(held), 4096): held[i] = 1\n"
          "print('ready', flush=True)\n"
          "sys.stdin.read()\n")


def test_tree_cpu_counts_a_live_grandchild_and_a_reaped_child_but_not_the_root_itself() -> None:
    before = tree_cpu_seconds(os.getpid())
    # a reaped child: its CPU moves into this process's cutime/cstime
    subprocess.run([sys.executable, "-c", BURN, "0.4"], check=True)
    after_reaped = tree_cpu_seconds(os.getpid())
    assert after_reaped - before >= 0.4

    # a live grandchild (a shell runs python): counted while it still runs
    proc = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "$0" 0.4; sleep 30', BURN])
    try:
        deadline = time.monotonic() + 60
        while tree_cpu_seconds(os.getpid()) - after_reaped < 0.4:
            assert time.monotonic() < deadline, "the grandchild's CPU never showed up in the tree"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()

    # the root's own CPU is left out
    own = read_stat(os.getpid())
    assert own is not None
    start = tree_cpu_seconds(os.getpid())
    while time.process_time() < 0.3 + (own.own_ticks / os.sysconf("SC_CLK_TCK")):
        pass
    assert tree_cpu_seconds(os.getpid()) - start < 0.1


def test_sampler_records_the_peak_rss_and_private_memory_of_a_titled_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TITLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        sampler = ProcessSampler(title=re.compile(r"^airflow worker -- (\S+)$"))
        sampler.sample()
    finally:
        proc.communicate("")
    assert set(sampler.peak_rss_mib) == {TASK_ID}
    assert sampler.peak_rss_mib[TASK_ID] >= 64
    assert 64 <= sampler.peak_private_mib[TASK_ID] <= sampler.peak_rss_mib[TASK_ID]


def test_sampler_ignores_processes_with_other_titles() -> None:
    sampler = ProcessSampler(title=re.compile(r"^no process is called this (\S+)$"))
    sampler.sample()
    assert sampler.peak_rss_mib == {}
    assert sampler.postgres_cpu_seconds() == 0.0  # no database watched
