"""Airflow 2.11 from the same files: DagBag loads dags/ cleanly, ``airflow dags backfill``
(synchronous, LocalExecutor, metadata DB on Postgres) gives the tables of one clean run, and
OOToTimescaleOperator takes its S3, OpenObserve API and file_list credentials from Airflow 2.11
connections (``dag.test``), equal to ``obs-etl run oo-agg``, failing cleanly on a wrong secret.

The Airflow 2.11 interpreter comes from ``scripts/airflow-env 2.11``: a user's 2.11 deployment, pinned by
``scripts/constraints-airflow-2.11.txt``, with this provider installed under ``--constraint`` on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.airflow_envs import deployment_venv
from support.airflow_stack import AirflowStack, airflow_conn_uri, create_database, drop_database, progress
from support.e2e_env import DAG_ID, REPO, WINDOW, DataRange, clean_run, obs_etl, write_config
from support.oo_agg_db import dump_tables
from support.oo_connections import (
    SOURCE_ENV,
    WAREHOUSE_CONN_ID,
    WAREHOUSE_PASSWORD,
    Stack,
    assert_failed_cleanly,
    assert_same_as_cli,
    conn_env_name,
    fresh_warehouse,
    live_log_records,
    log_records,
    oo_stack,
    openobserve_conn_json,
    run_cli,
    with_password,
    write_dag_file,
)
from support.oo_connections import WINDOW as OO_WINDOW
from support.tables import diff_snapshots, ledger, snapshot

DAG_IDS = {"obs_oo_agg", "obs_age_refresh", "obs_topo_iac", "obs_topo_ansible", "obs_backfill", "obs_reconcile"}
TENANT = {"acme": 1}
WINDOWS = 3


def airflow2_python() -> str:
    """The Airflow 2.11 deployment's python: ``OBS_AIRFLOW2_PYTHON`` if set, else ``scripts/airflow-env 2.11``."""
    if os.environ.get("OBS_AIRFLOW2_PYTHON"):
        return os.environ["OBS_AIRFLOW2_PYTHON"]
    return str(deployment_venv("2.11") / "bin" / "python")


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
              f"b = DagBag(dag_folder={str(stack.dags_folder)!r}); "
              "print(json.dumps({'version': airflow.__version__, 'errors': b.import_errors, "
              "'dags': {d: [t.task_id for t in b.dags[d].tasks] for d in b.dag_ids}}))")
    out = subprocess.run([stack.python, "-c", script], env=stack.env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("2.11"), got["version"]
    assert got["errors"] == {}, got["errors"]
    assert set(got["dags"]) == DAG_IDS
    assert {"wait_until_eligible", "select_tenants", "aggregate"} <= set(got["dags"][DAG_ID])
    assert set(got["dags"]["obs_reconcile"]) == {"select_tenants", "reconcile", "done"}


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


# -- OOToTimescaleOperator's connections on Airflow 2.11 ------------------------------------------------------------

# Runs one DAG file through Airflow 2.11's dag.test, which takes ``execution_date`` (3.x: ``logical_date``);
# a manual run at L covers the interval ending at L. Prints the run's state and data interval.
AF2_DAG_TEST = """
import importlib.util, json, sys
from datetime import datetime

import airflow

spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test(execution_date=datetime.fromisoformat(sys.argv[2]))
print("DAG_TEST_RESULT " + json.dumps({"airflow": airflow.__version__, "state": str(run.state),
                                       "data_interval_start": str(run.data_interval_start),
                                       "data_interval_end": str(run.data_interval_end)}))
"""


@pytest.fixture(scope="module")
def oo_conn_stack(s3_env: dict[str, str], s3_bucket: str, pg_server_url: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same OO data on the loopback S3 server (with file_list) and behind the OO API double."""
    with oo_stack(s3_env, s3_bucket, pg_server_url, tmp_path_factory.mktemp("af2_oo_conn")) as built:
        yield built


@pytest.fixture()
def warehouse(pg_server_url: str) -> Iterator[str]:
    yield from fresh_warehouse(pg_server_url, "e2e_af2_conn_op")


@pytest.fixture()
def cli_warehouse(pg_server_url: str) -> Iterator[str]:
    yield from fresh_warehouse(pg_server_url, "e2e_af2_conn_cli")


def run_operator_af2(stack: AirflowStack, tmp_path: Path, *, dag_id: str, tenant: str, config: Path, pg_url: str,
                     connections: dict[str, str], conn_ids: dict[str, str]) -> tuple[dict[str, str], str]:
    """A one-task OOToTimescaleOperator DAG through 2.11's dag.test in the 2.11 interpreter, at WINDOW.end.

    Credentials only from ``AIRFLOW_CONN_*``: the variables the CLI reads (and ``PG_URL``) are removed
    from that process. Returns (the run's state and data interval, the task output).
    """
    dag_file = write_dag_file(tmp_path / "dags", dag_id=dag_id, tenant=tenant, config=config, conn_ids=conn_ids)
    env = {name: value for name, value in stack.env().items() if name not in (*SOURCE_ENV, "PG_URL")}
    env[conn_env_name(WAREHOUSE_CONN_ID)] = airflow_conn_uri(with_password(pg_url, WAREHOUSE_PASSWORD))
    env.update({conn_env_name(conn_id): value for conn_id, value in connections.items()})
    started = time.monotonic()
    out = subprocess.run([stack.python, "-c", AF2_DAG_TEST, str(dag_file), OO_WINDOW.end.isoformat()], env=env,
                         capture_output=True, text=True, timeout=300)
    progress(f"af2 dag.test of {dag_id} took {time.monotonic() - started:.1f}s")
    output = out.stdout + out.stderr
    results = [line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("DAG_TEST_RESULT ")]
    assert out.returncode == 0 and results, f"dag.test did not finish (rc={out.returncode}):\n{output[-5000:]}"
    run = json.loads(results[-1])
    assert run["airflow"].startswith("2.11"), run
    # The operator's window comes from the data interval: 2.11 must give the one ending at execution_date.
    assert (run["data_interval_start"], run["data_interval_end"]) == (str(OO_WINDOW.start), str(OO_WINDOW.end)), run
    return run, output


@pytest.mark.parametrize("case", ["s3_with_file_list", "openobserve_api"])
def test_airflow2_operator_with_source_connections_equals_the_cli(
        case: str, airflow2: tuple[AirflowStack, str, Path, DataRange], oo_conn_stack: Stack, warehouse: str,
        cli_warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(a) an aws connection (URI form) to the loopback S3 server plus a postgres connection to OO's
    file_list DB; (b) an openobserve connection to the OO API double. Same tables as the CLI."""
    data = oo_conn_stack
    if case == "s3_with_file_list":
        tenant, cli = "s3files", {"file_list": True}
        conn_ids = {"aws_conn_id": "oo_bucket", "file_list_conn_id": "oo_meta"}
        connections = {"oo_bucket": data.aws_conn(form="uri"), "oo_meta": airflow_conn_uri(data.file_list_url)}
    else:
        tenant, cli = "viaapi", {"api": True}
        conn_ids = {"oo_conn_id": "oo_api"}
        connections = {"oo_api": openobserve_conn_json(data.api_url, data.api.user, data.api.password, "default")}
    dag_id = f"af2_oo_conn_{case}"
    run_cli(data, tenant, cli_warehouse, monkeypatch, **cli)
    data.api.requests.clear()
    run, output = run_operator_af2(airflow2[0], tmp_path, dag_id=dag_id, tenant=tenant, config=data.config,
                                   pg_url=warehouse, connections=connections, conn_ids=conn_ids)
    assert run["state"] == "success", output[-5000:]
    snap = assert_same_as_cli(warehouse, cli_warehouse, data, tenant, dag_id)
    assert log_records(snap) == live_log_records(data)  # file_list asked (no leftovers), or the API read
    assert bool(data.api.requests) == (case == "openobserve_api")


def test_airflow2_operator_with_a_wrong_s3_secret_fails_cleanly_without_leaking_it(
        airflow2: tuple[AirflowStack, str, Path, DataRange], oo_conn_stack: Stack, warehouse: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, wrong, dag_id = oo_conn_stack, "wrong-aws-secret-2110", "af2_oo_conn_bad_aws"
    run_cli(data, "s3list", warehouse, monkeypatch)  # something to keep
    before = dump_tables(warehouse)
    run, output = run_operator_af2(airflow2[0], tmp_path, dag_id=dag_id, tenant="s3list", config=data.config,
                                   pg_url=warehouse, conn_ids={"aws_conn_id": "oo_bucket_bad"},
                                   connections={"oo_bucket_bad": data.aws_conn(secret=wrong)})
    assert run["state"] == "failed", output[-5000:]
    error = assert_failed_cleanly(data, warehouse, before, output, tenant="s3list", dag_id=dag_id, wrong=wrong)
    assert "metrics/" in error  # names the stream it could not read
    assert any(word in error for word in ("SignatureDoesNotMatch", "AccessDenied", "ACCESS_DENIED", "signature"))
