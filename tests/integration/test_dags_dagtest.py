"""The shipped DAGs run under real Airflow (dag.test) and write the same rows as the engine run directly.

Data: the OO-layout generator. Oracle: ``jobs.oo_agg.run`` into a second database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.databases import create_database, drop_database
from support.oo_agg_db import content_by_urn, ledger

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, parse_time
from airflow_obs_provider.jobs import oo_agg

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
T0 = parse_time("2024-05-01T10:00:00Z")
MIN = parse_time("2024-05-01T10:01:00Z") - T0

CONFIG = """
start_date: 2024-05-01T10:00:00Z
jobs:
  oo-agg: {{delay: 0s, initial_lookback: {lookback}}}
tenants:
  - {{code: acme, source: {{kind: local, path: oo, org: default}}}}
  - {{code: globex, source: {{kind: local, path: oo, org: default}}}}
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dagtest")
    generate(Storage.local(folder / "oo"), T0, T0 + 8 * MIN, seed=11)
    return folder


@pytest.fixture(scope="module")
def oracle_url(pg_server_url: str) -> Iterator[str]:
    from airflow_obs_provider.engine.bootstrap import bootstrap

    url = create_database(pg_server_url, "t_dagtest_oracle")
    bootstrap(url)
    yield url
    drop_database(pg_server_url, url)


@pytest.fixture()
def airflow_env(airflow_home: Path, pg_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo's dags/ as the bundle, a config file, and the warehouse connection the DAGs use."""
    config = data_dir / "etl.yaml"
    # A lookback of one hour: tenants without any successful window skip these 2024 windows.
    config.write_text(CONFIG.format(lookback="1h"))
    monkeypatch.setenv("OBS_ETL_CONFIG", str(config))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(REPO / "dags"), "refresh_interval": 0}}]))
    monkeypatch.setenv("AIRFLOW_CONN_OBS_POSTGRES", "postgres://" + pg_url.split("://", 1)[1])
    return config


def _dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _task_states(dag_run: Any) -> dict[tuple[str, int], str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in tis}


def test_obs_oo_agg_run_writes_the_engine_rows_and_applies_the_initial_lookback(
        airflow_env: Path, pg_url: str, oracle_url: str) -> None:
    cfg = load_config(airflow_env)
    first = Window(T0, T0 + MIN)
    span = Window(T0, T0 + 5 * MIN)  # one run: jobs.oo-agg.run_every (5m) of one-minute windows
    minutes = list(span.split(MIN))
    # acme already has a successful window (so it runs); globex has none (so 2024 is before its lookback).
    oo_agg.run(cfg, "acme", first, pg_url=pg_url)
    for w in minutes:
        oo_agg.run(cfg, "acme", w, pg_url=oracle_url)

    dag = _dag("obs_oo_agg")
    run = dag.test(logical_date=span.end)  # a manual run at L covers the run_every ending at L
    states = _task_states(run)
    assert states[("wait_until_eligible", -1)] == "success"
    assert states[("select_tenants", -1)] == "success"
    assert [k for k in states if k[0] == "aggregate"] == [("aggregate", 0)]  # only acme was mapped
    assert states[("aggregate", 0)] == "success"

    assert content_by_urn(pg_url, "acme") == content_by_urn(oracle_url, "acme")
    # Every one-minute window of the run is its own ledger row; globex's are recorded as skipped.
    assert [r[:3] for r in ledger(pg_url, tenant="acme")] == [(w.start, w.end, "success") for w in minutes]
    assert [r[:3] for r in ledger(pg_url, tenant="globex")] == [(w.start, w.end, "skipped") for w in minutes]


def test_obs_backfill_runs_each_window_once_and_skips_successful_ones(
        airflow_env: Path, pg_url: str, oracle_url: str) -> None:
    cfg = load_config(airflow_env)
    minutes = [Window(T0 + m * MIN, T0 + (m + 1) * MIN) for m in (5, 6, 7)]
    oo_agg.run(cfg, "acme", minutes[0], pg_url=pg_url)  # 10:05 already succeeded
    for w in minutes:
        oo_agg.run(cfg, "acme", w, pg_url=oracle_url)
    dag = _dag("obs_backfill")
    conf = {"job": "oo-agg", "tenant": "acme", "from": "2024-05-01T10:05:00Z", "to": "2024-05-01T10:08:00Z"}
    run = dag.test(run_conf=conf)
    states = _task_states(run)
    # Only 10:06 and 10:07 were planned, and one task runs both (jobs.oo-agg.windows_per_task: 30).
    assert sorted(k for k in states if k[0] == "run_window") == [("run_window", 0)]
    assert set(states.values()) == {"success"}
    assert content_by_urn(pg_url, "acme") == content_by_urn(oracle_url, "acme")
    before = ledger(pg_url, tenant="acme")
    assert [(r[0], r[2], r[3]) for r in before if r[0] >= minutes[0].start] == [
        (w.start, "success", 1) for w in minutes]

    # The same request again plans nothing: every window is already successful in the ledger.
    again = dag.test(run_conf=conf)
    assert not [k for k, v in _task_states(again).items() if k[0] == "run_window" and v == "success"]
    assert ledger(pg_url, tenant="acme") == before


def test_obs_backfill_runs_an_age_refresh_window_through_the_operators_path(airflow_env: Path, pg_url: str) -> None:
    """obs_backfill runs every job through run_job_window, as AgeRefreshOperator does: the configuration's
    active window and tenants reach the job, and the window is counted in the ledger once."""
    dag = _dag("obs_backfill")
    run = dag.test(run_conf={"job": "age-refresh", "tenant": "acme", "from": "2024-05-01T10:00:00Z",
                             "to": "2024-05-01T10:05:00Z"})
    assert _task_states(run)[("run_window", 0)] == "success"
    rows = ledger(pg_url, job="age-refresh", tenant="acme")
    assert [(r[1], r[2], r[3]) for r in rows] == [(T0 + 5 * MIN, "success", 1)]
    assert rows[0][1] - rows[0][0] == 10 * MIN  # the default active window, [T - 10 min, T)


def test_obs_backfill_rejects_a_bad_conf_without_touching_tables(airflow_env: Path, pg_url: str) -> None:
    before = ledger(pg_url)
    dag = _dag("obs_backfill")
    run = dag.test(run_conf={"job": "oo-agg", "tenant": "acme", "from": "2024-05-01T10:05:00Z",
                             "to": "2024-05-01T10:00:00Z"})
    assert _task_states(run)[("plan_windows", -1)] == "failed"
    assert str(run.state).endswith("failed")
    assert ledger(pg_url) == before


def _window_with_late_records(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, tenant: str,
                              other_tenants: str = "") -> tuple[Window, Any]:
    """A 2024 oo-agg window of ``tenant`` run once, then records delivered late into its source; the
    config (``OBS_ETL_CONFIG``) lists ``other_tenants`` first and reaches back to 2024 for late data."""
    from support.late_files import Bucket, deliver, withhold

    from airflow_obs_provider.engine.window import to_us

    storage = Storage.local(tmp_path / "late")
    generate(storage, T0, T0 + 8 * MIN, seed=11)
    config = tmp_path / "etl.yaml"
    config.write_text("jobs:\n  oo-agg: {late_horizon: 100000h}\ntenants:\n" + other_tenants
                      + f"  - {{code: {tenant}, source: {{kind: local, path: late, org: default}}}}\n")
    monkeypatch.setenv("OBS_ETL_CONFIG", str(config))
    window = Window(T0 + 6 * MIN, T0 + 7 * MIN)
    late = withhold(Bucket(storage), "metrics", "container_cpu_usage_ratio", T0, to_us(window.start),
                    to_us(window.start) + 30_000_000)
    oo_agg.run(load_config(config), tenant, window, pg_url=pg_url)
    deliver(Bucket(storage), late)
    return window, late


def test_obs_reconcile_reruns_a_window_that_gained_late_records_and_counts_them(
        airflow_env: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.statsd_listener import StatsdListener

    window, late = _window_with_late_records(tmp_path, pg_url, monkeypatch, "initech")

    # Airflow sets its Stats client up once per process: a child process with StatsD switched on
    statsd = StatsdListener()
    env = {**os.environ, "AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
           "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port)}
    script = ("import sys\n"
              "from airflow.dag_processing.dagbag import DagBag\n"
              "bag = DagBag(dag_folder=sys.argv[1])\n"
              "assert not bag.import_errors, bag.import_errors\n"
              "print('run state', bag.get_dag('obs_reconcile').test().state)")
    try:
        out = subprocess.run([sys.executable, "-c", script, str(REPO / "dags" / "obs_reconcile.py")], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().splitlines()[-1] == "run state success", out.stdout[-3000:]
        rows = [r for r in ledger(pg_url, tenant="initech")]
        assert [(r[0], r[2], r[3]) for r in rows] == [(window.start, "success", 2)]
        late_windows = statsd.wait_for("obs_etl.oo_agg.late_windows", timeout=20)
        late_records = statsd.wait_for("obs_etl.oo_agg.late_records", timeout=20)
        assert sum(m.value for m in late_windows) == 1
        assert sum(m.value for m in late_records) == sum(t.num_rows for t in late.tables)
    finally:
        statsd.stop()


def test_obs_reconcile_checks_every_tenant_of_a_batch_and_fails_naming_the_broken_one(
        airflow_env: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "broken" comes first in the batch: its source root is missing, so its pass fails
    window, _ = _window_with_late_records(tmp_path, pg_url, monkeypatch, "hooli",
                                          "  - {code: broken, source: {kind: local, path: gone, org: default}}\n")

    script = ("import sys\n"
              "from airflow.dag_processing.dagbag import DagBag\n"
              "bag = DagBag(dag_folder=sys.argv[1])\n"
              "dag = bag.get_dag('obs_reconcile')\n"
              "dag.get_task('reconcile').retries = 0  # fail at once: dag.test would wait out the backoff\n"
              "run = dag.test()\n"
              "print('run state', run.state)")
    out = subprocess.run([sys.executable, "-c", script, str(REPO / "dags" / "obs_reconcile.py")],
                         env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "run state failed", out.stdout[-3000:]
    assert "1 of 2 tenants failed: broken:" in out.stdout + out.stderr
    # the tenant after the broken one was still checked: its late window was rerun
    assert [(r[0], r[2], r[3]) for r in ledger(pg_url, tenant="hooli")] == [(window.start, "success", 2)]
