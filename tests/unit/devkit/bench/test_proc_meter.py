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


def _wait_for_cpu(root: int, seconds: float) -> float:
    deadline = time.monotonic() + 120
    while (got := tree_cpu_seconds(root)) < seconds:
        assert time.monotonic() < deadline, f"the tree of {root} shows {got:.2f} CPU s, never {seconds}"
        time.sleep(0.05)
    return got


# Each test measures the tree of a shell it starts, not of the pytest process: processes other tests left
# behind could end or be reparented meanwhile and move the pytest tree's total.
def test_tree_cpu_counts_a_live_child() -> None:
    shell = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "$0" 60', BURN])
    try:
        _wait_for_cpu(shell.pid, 0.3)
        assert shell.poll() is None  # the burner (60 CPU s) is still running: counted while alive
    finally:
        shell.kill()
        shell.wait()


def test_tree_cpu_counts_a_child_its_parent_reaped() -> None:
    shell = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "$0" 0.4; echo reaped; sleep 60', BURN],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout is not None and shell.stdout.readline().strip() == "reaped"
        # only `sleep` is alive below the shell now: the burner's CPU is in the shell's cutime
        assert tree_cpu_seconds(shell.pid) >= 0.3  # clock-tick accounting may round 0.4 s down a little
    finally:
        shell.kill()
        shell.wait()


def test_tree_cpu_leaves_out_the_roots_own_cpu() -> None:
    burner = subprocess.Popen([sys.executable, "-c", BURN + "print('burnt', flush=True)\nimport time; time.sleep(60)\n",
                               "0.4"], stdout=subprocess.PIPE, text=True)
    try:
        assert burner.stdout is not None and burner.stdout.readline().strip() == "burnt"
        own = read_stat(burner.pid)
        assert own is not None and own.own_ticks / os.sysconf("SC_CLK_TCK") >= 0.3
        assert tree_cpu_seconds(burner.pid) == 0.0
    finally:
        burner.kill()
        burner.wait()


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
