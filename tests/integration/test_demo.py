"""``obs-etl demo`` end to end: data, schema, every DAG run through Airflow in one process, the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_every_dag_and_prints_the_summary(airflow_home: Path, pg_server_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "OBS_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("AIRFLOW_HOME", None)  # the demo makes its own Airflow home under OBS_CACHE_DIR
    out = subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", "demo", "--minutes", "10",
                          "--pg-url", pg_server_url], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    runs = re.findall(r"airflow: (obs_\w+) .*?: (\w+) in [\d.]+s", out.stdout)
    assert [dag for dag, _ in runs] == ["obs_backfill", "obs_oo_agg", "obs_backfill", "obs_topo_iac",
                                        "obs_topo_ansible"], out.stdout
    assert {state for _, state in runs} == {"success"}, out.stdout
    assert "10 minutes" in out.stdout and "== Ledger (etl_job_run) ==" in out.stdout
    ledger = out.stdout.split("== Ledger (etl_job_run) ==", 1)[1]
    assert re.search(r"oo-agg\s+success\s+10 windows", ledger), ledger
    assert "failed" not in ledger.split("\n== Airflow UI ==")[0], ledger
