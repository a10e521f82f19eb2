"""Airflow 2.11 from the same files: DagBag loads dags/ cleanly, and ``airflow dags backfill``
(synchronous, LocalExecutor, metadata DB on Postgres) gives the tables of one clean run.

The Airflow 2.11 interpreter comes from ``scripts/airflow2-env`` (a cached venv with this provider).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.airflow_stack import AirflowStack, airflow_conn_uri, create_database, drop_database, progress
from support.e2e_env import DAG_ID, REPO, WINDOW, DataRange, clean_run, obs_etl, write_config
from support.tables import diff_snapshots, ledger, snapshot

DAG_IDS = {"obs_oo_agg", "obs_age_refresh", "obs_topo_iac", "obs_topo_ansible", "obs_backfill"}
TENANT = {"acme": 1}
WINDOWS = 3


def airflow2_python() -> str:
    """The Airflow 2.11 venv's python: ``OBS_AIRFLOW2_PYTHON`` if set, else built once and cached by
    scripts/airflow2-env."""
    if os.environ.get("OBS_AIRFLOW2_PYTHON"):
        return os.environ["OBS_AIRFLOW2_PYTHON"]
    started = time.monotonic()
    out = subprocess.run(["bash", str(REPO / "scripts" / "airflow2-env")], capture_output=True, text=True,
                         timeout=1800, env={**os.environ, "OBS_PYTHON": os.environ.get("OBS_PYTHON", sys.executable)})
    if out.returncode != 0:
        raise RuntimeError(f"scripts/airflow2-env failed rc={out.returncode}:\n{out.stderr[-3000:]}")
    python = str(Path(out.stdout.strip().splitlines()[-1]) / "bin" / "python")
    progress(f"Airflow 2.11 env ready in {time.monotonic() - started:.1f}s: {python}")
    return python


@pytest.fixture(scope="module")
def airflow2(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, e2e_data: Path,
             data_range: DataRange) -> Iterator[tuple[AirflowStack, str, Path, DataRange]]:
    # The data range starts on a 5-minute boundary: end these windows on the next one, so the last
    # window closes a bucket and service_call_5m / log_pattern_5m are compared too.
    rng = DataRange(start=data_range.start + (5 - WINDOWS) * WINDOW, end=data_range.start + 5 * WINDOW)
    config = write_config(tmp_path_factory.mktemp("af2_config") / "etl.yaml", e2e_data, rng, tenants=TENANT,
                          max_active_runs=1)
    target = create_database(pg_server_url, "e2e_af2_target")
    obs_etl("bootstrap", "--pg-url", target)
    stack = AirflowStack(root=tmp_path_factory.mktemp("airflow2"), dags_folder=REPO / "dags",
                         pg_server_url=pg_server_url, python=airflow2_python(), name="af2",
                         env_overrides={"OBS_ETL_CONFIG": str(config),
                                        "AIRFLOW_CONN_OBS_POSTGRES": airflow_conn_uri(target), "PG_URL": target,
                                        "AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION": "False"})
    try:
        stack.migrate()
        yield stack, target, config, rng
    finally:
        stack.stop()
        drop_database(pg_server_url, target)


def test_airflow2_dagbag_loads_every_dag_without_import_errors(airflow2: tuple[AirflowStack, str, Path, DataRange]) -> None:
    stack = airflow2[0]
    script = ("import json, airflow; from airflow.models.dagbag import DagBag; "
              f"b = DagBag(dag_folder={str(stack.dags_folder)!r}, include_examples=False); "
              "print(json.dumps({'version': airflow.__version__, 'errors': b.import_errors, "
              "'dags': {d: [t.task_id for t in b.dags[d].tasks] for d in b.dag_ids}}))")
    out = subprocess.run([stack.python, "-c", script], env=stack.env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("2.11"), got["version"]
    assert got["errors"] == {}, got["errors"]
    assert set(got["dags"]) == DAG_IDS
    assert {"wait_until_eligible", "select_tenants", "aggregate"} <= set(got["dags"][DAG_ID])


# Airflow 2.11's BackfillJobRunner deadlocks on a mapped task whose list producer has an upstream task
# (apache/airflow #33994, #34012); the DAGs therefore keep select_tenants a root task and gate the
# mapped task with the sensor directly. This test guards that shape, with max_active_runs 1 as the
# README tells 2.11 users (concurrent backfill runs could still leave a mapped task unexpanded).
def test_airflow2_dags_backfill_equals_one_clean_run(airflow2: tuple[AirflowStack, str, Path, DataRange],
                                                     pg_server_url: str) -> None:
    stack, target, config, rng = airflow2
    last_logical = rng.end - WINDOW  # -s/-e are logical dates (= window starts), both included
    started = time.monotonic()
    stack.cli(["dags", "backfill", "-s", rng.start.isoformat(), "-e", last_logical.isoformat(), DAG_ID],
              timeout=900)
    progress(f"airflow dags backfill of {WINDOWS} windows took {time.monotonic() - started:.1f}s")
    rows = ledger(target)
    windows = sorted({(s, e) for _, s, e, status, _ in rows if status == "success"})
    assert windows == [(rng.start + i * WINDOW, rng.start + (i + 1) * WINDOW) for i in range(WINDOWS)], rows
    assert all(status == "success" for *_, status, _ in rows), rows

    clean_url = create_database(pg_server_url, "e2e_af2_clean")
    try:
        clean_run(clean_url, config, rng.start, rng.end, tenants=TENANT)
        got, want = snapshot(target), snapshot(clean_url)
    finally:
        drop_database(pg_server_url, clean_url)
    assert want["metric_1m"] and want["service_call_5m"], "the clean run wrote nothing to compare"
    assert got == want, diff_snapshots(got, want)
