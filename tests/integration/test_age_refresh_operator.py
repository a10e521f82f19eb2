"""AgeRefreshOperator inside a real Airflow DAG run (dag.test): T = data_interval_end, ledger ids, AGE-missing log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from support.age_scenarios import (
    Call,
    expected_edges,
    graph_edges,
    only_tenant,
    relational_edges,
    tenant_id,
    write_calls,
)
from support.databases import create_database, drop_database

from airflow_obs_provider.engine.bootstrap import bootstrap

pytestmark = pytest.mark.integration

T = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
M = timedelta(minutes=1)
CALLS = [Call(T - 10 * M, "urn:svc:checkout", "urn:svc:payments", 600, 12, 88.0),
         Call(T - 5 * M, "urn:svc:payments", "urn:ext:bank.example.com", 300, 0, 140.0)]


def _conn_uri(libpq_url: str) -> str:
    return "postgres://" + libpq_url.split("://", 1)[1]


DAG_FILE = """
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.operators.age_refresh import AgeRefreshOperator
from airflow_obs_provider.version_compat import DAG, DeltaDataIntervalTimetable

with DAG(dag_id={dag_id!r}, schedule=DeltaDataIntervalTimetable(timedelta(minutes=5)),
         start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False) as dag:
    AgeRefreshOperator(task_id="refresh_graph", tenant="shop", postgres_conn_id="obs_warehouse")
"""


def _run_dag(tmp_path: Path, pg: str, monkeypatch: pytest.MonkeyPatch, dag_id: str) -> None:
    """Run a one-task DAG file through dag.test (it serialises the DAG from its dags folder)."""
    import importlib.util

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{dag_id}.py").write_text(DAG_FILE.format(dag_id=dag_id))
    # dag.test serialises DAGs from the configured bundles: one local bundle holding just this file.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags), "refresh_interval": 0}}]))
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WAREHOUSE", _conn_uri(pg))
    spec = importlib.util.spec_from_file_location(dag_id, dags / f"{dag_id}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.dag.test(logical_date=T)


def _tenant_and_ledger(pg: str) -> tuple[int, list[tuple]]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM dim_tenant WHERE code = 'shop'")
        tid = cur.fetchone()[0]
        cur.execute("SELECT window_from, window_to, status, dag_id, details->>'graph_mode' FROM etl_job_run "
                    "WHERE job = 'age-refresh' AND tenant_id = %s", (tid,))
        return tid, cur.fetchall()


def test_operator_refreshes_the_graph_for_data_interval_end(pg_url: str, airflow_home: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_calls(pg_url, tenant_id(pg_url, "shop"), CALLS)
    _run_dag(tmp_path, pg_url, monkeypatch, "age_operator_with_age")
    tid, ledger = _tenant_and_ledger(pg_url)
    assert ledger == [(T - 10 * M, T, "success", "age_operator_with_age", "age")]
    assert only_tenant(graph_edges(pg_url), tid) == expected_edges(tid, CALLS, T)


@pytest.fixture(scope="module")
def no_age_url(pg_server_url: str) -> Iterator[str]:
    url = create_database(pg_server_url, "t_age_operator_no_age")
    bootstrap(url, skip_extensions=["age"])
    yield url
    drop_database(pg_server_url, url)


def test_operator_without_age_says_so_and_uses_the_relational_fallback(
        no_age_url: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    write_calls(no_age_url, tenant_id(no_age_url, "shop"), CALLS)
    _run_dag(tmp_path, no_age_url, monkeypatch, "age_operator_without_age")
    task_log = "".join(capfd.readouterr())  # the task logger writes through Airflow's structlog to the console
    assert "Apache AGE is missing" in task_log and "relational fallback" in task_log
    tid, ledger = _tenant_and_ledger(no_age_url)
    assert ledger == [(T - 10 * M, T, "success", "age_operator_without_age", "relational")]
    assert relational_edges(no_age_url, tid) == expected_edges(tid, CALLS, T)
