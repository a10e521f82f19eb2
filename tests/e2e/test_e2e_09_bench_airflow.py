"""``obs-etl bench airflow --quick`` end to end: it starts its own Airflow 3, runs both cases through the CLI
and the scheduler, and prints the table, the task-process RSS and the table comparison. Timing values are
printed, never asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from support.airflow_stack import progress


def test_bench_airflow_quick_prints_both_cases_ratios_rss_and_equal_tables(pg_server_url: str) -> None:
    out = subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", "bench", "airflow", "--quick",
                          "--pg-url", pg_server_url], capture_output=True, text=True, timeout=1500,
                         env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")})
    progress("bench airflow --quick output:\n" + out.stdout[-4000:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    number = r"\d+\.\d"
    ratio = r"\d+\.\d\dx"
    for case, cli, dag in (("A", "CLI, 2 processes", "obs_backfill, one run"),
                           ("B", "CLI, 2 processes", "obs_oo_agg catch-up")):
        assert re.search(rf"^\| {case}: [^|]+ \| {re.escape(cli)} \| {number} \| {number} \| \| \|$", text, re.M), text
        assert re.search(rf"^\| {case}: [^|]+ \| {re.escape(dag)} \| {number} \| -?{number} \| {ratio} \| -?{ratio} \|$",
                         text, re.M), text
    assert re.search(r"^peak RSS of a task process: \d+ MiB \(VmHWM of [1-9]\d* aggregate/run_window", text, re.M), text
    assert re.search(r"^peak RSS of a CLI process: \d+ MiB", text, re.M), text
    assert re.search(r"^tables equal \{'dim_resource': [1-9]", text, re.M), text
    assert "DIFFER" not in text
