"""OOToTimescaleOperator in a real Airflow DAG run (dag.test): the window comes from the data interval."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from support.oo_agg_db import ledger, metric_rows, write_config

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

DAG_FILE = """
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator
from airflow_obs_provider.version_compat import DAG, DeltaDataIntervalTimetable

with DAG(dag_id="oo_agg_operator_test", schedule=DeltaDataIntervalTimetable(timedelta(minutes=1)),
         start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False) as dag:
    OOToTimescaleOperator(task_id="aggregate", tenant="{{{{ 'ac' ~ 'me' }}}}", config_path={config!r},
                          postgres_conn_id="obs_oo_agg_pg")
"""


def test_operator_runs_the_data_interval_window(airflow_home: Path, pg_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    generate(Storage.local(tmp_path / "oo"), parse_time("2024-05-01T10:00:00Z"), parse_time("2024-05-01T10:06:00Z"),
             seed=5)
    cfg = write_config(tmp_path, "{kind: local, path: oo, org: default}")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "oo_agg_operator_test.py").write_text(DAG_FILE.format(config=str(cfg)))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags), "refresh_interval": 0}}]))
    monkeypatch.setenv("AIRFLOW_CONN_OBS_OO_AGG_PG", "postgres://" + pg_url.split("://", 1)[1])
    spec = importlib.util.spec_from_file_location("oo_agg_operator_test", dags / "oo_agg_operator_test.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # a manual run at logical date L covers the interval ending at L
    module.dag.test(logical_date=parse_time("2024-05-01T10:05:00Z"))
    rows = ledger(pg_url, tenant="acme")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (parse_time("2024-05-01T10:04:00Z"), parse_time("2024-05-01T10:05:00Z"), "success")]
    assert {k[0] for k in metric_rows(pg_url, "acme")} == {to_us(parse_time("2024-05-01T10:04:00Z"))}
