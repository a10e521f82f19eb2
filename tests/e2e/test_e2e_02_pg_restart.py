"""Postgres stops while an oo-agg task is writing; after it is back, the task's retry heals the window.

The target database lives on a PRIVATE cluster (``scripts/devstack`` with its own port and state
folder); Airflow's metadata database stays on the shared server, so only the task's target goes away.

Deterministic timing: before the DAG is unpaused the test holds the window's ledger advisory lock
(``engine.ledger.advisory_key``) on its own connection, so the task blocks inside its exactly-once
transaction, connected to the target. The test sees it waiting in ``pg_locks``, stops the cluster
(the task's connection breaks, its try fails), starts the cluster again and waits for the retry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from support.airflow_stack import (
    AirflowStack,
    airflow_conn_uri,
    create_database,
    drop_database,
    progress,
    wait_for,
)
from support.e2e_env import (
    DAG_ID,
    REPO,
    WINDOW,
    Airflow3,
    DataRange,
    clean_run,
    obs_etl,
    run_window,
    write_config,
)
from support.private_pg import PrivatePostgres
from support.tables import diff_snapshots, snapshot

from airflow_obs_provider.engine.db import ensure_tenant
from airflow_obs_provider.engine.ledger import advisory_key
from airflow_obs_provider.engine.window import Window

TENANT = {"acme": 1}
WINDOWS = 3


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(tmp_path_factory.mktemp("private_pg_state"))
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def restart_range(data_range: DataRange) -> DataRange:
    return DataRange(start=data_range.start, end=data_range.start + WINDOWS * WINDOW)


@pytest.fixture(scope="module")
def restart_stack(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, private_pg: PrivatePostgres,
                  e2e_data: Path, restart_range: DataRange) -> Iterator[Airflow3]:
    assert private_pg.url
    target = create_database(private_pg.url, "e2e_restart_target")
    obs_etl("bootstrap", "--pg-url", target)
    config = write_config(tmp_path_factory.mktemp("restart_config") / "etl.yaml", e2e_data, restart_range,
                          tenants=TENANT)
    stack = AirflowStack(root=tmp_path_factory.mktemp("airflow3_restart"), dags_folder=REPO / "dags",
                         pg_server_url=pg_server_url, name="af3r",
                         env_overrides={"OBS_ETL_CONFIG": str(config),
                                        "AIRFLOW_CONN_OBS_POSTGRES": airflow_conn_uri(target), "PG_URL": target})
    try:
        rest = stack.start()  # api-server, scheduler, dag-processor and the triggerer (deferred sensors)
        yield Airflow3(stack=stack, rest=rest, target_url=target, config=config)
    finally:
        stack.stop()


def waiting_on_advisory_lock(url: str) -> int:
    """Backends of this database waiting for an advisory lock."""
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError:
        return 0
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                           WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()""")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_postgres_stopped_during_a_running_task_heals_on_retry(restart_stack: Airflow3, private_pg: PrivatePostgres,
                                                               restart_range: DataRange, pg_server_url: str,
                                                               tmp_path: Path) -> None:
    rest, target = restart_stack.rest, restart_stack.target_url
    first = Window(restart_range.start, restart_range.start + WINDOW)

    # Hold the first window's exactly-once lock: its aggregate task will wait inside the transaction.
    holder = psycopg2.connect(target)
    holder.autocommit = True
    with holder.cursor() as cur:
        tenant_id = ensure_tenant(cur, "acme", configured=("acme",))
        cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (advisory_key("oo-agg", tenant_id, first),))

    rest.wait_dag(DAG_ID)
    rest.set_paused(DAG_ID, False)
    wait_for("the first window's aggregate task to block on the held lock",
             lambda: waiting_on_advisory_lock(target) > 0, timeout=300, interval=2,
             describe=lambda: str([(r["dag_run_id"], r["state"]) for r in rest.dag_runs(DAG_ID)]))
    run = next(r for r in rest.dag_runs(DAG_ID) if run_window(r)[0] == first.start)
    run_id = run["dag_run_id"]

    def aggregate() -> dict:
        return next(t for t in rest.task_instances(DAG_ID, run_id) if t["task_id"] == "aggregate")

    assert aggregate()["state"] == "running"
    assert aggregate()["try_number"] == 1

    private_pg.stop()  # breaks the task's connection (and the lock holder's)
    try:
        holder.close()
    except psycopg2.Error:
        pass
    wait_for("the interrupted try to fail into up_for_retry", lambda: aggregate()["state"] in ("up_for_retry",),
             timeout=180, interval=2, describe=lambda: f"aggregate={aggregate()['state']}")
    down_at = time.monotonic()
    private_pg.start()
    assert private_pg.is_up()
    progress(f"private Postgres back after {time.monotonic() - down_at:.1f}s")

    runs = rest.wait_runs(DAG_ID, WINDOWS, timeout=600)
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]
    healed = aggregate()
    assert healed["state"] == "success" and healed["try_number"] >= 2, healed

    windows = sorted(run_window(r) for r in runs)
    assert windows[0][0] == restart_range.start and windows[-1][1] >= restart_range.end
    clean_url = create_database(pg_server_url, "e2e_restart_clean")
    try:
        clean_run(clean_url, restart_stack.config, windows[0][0], windows[-1][1], tenants=TENANT)
        got, want = snapshot(target), snapshot(clean_url)
    finally:
        drop_database(pg_server_url, clean_url)
    assert want["metric_1m"], "the clean run wrote nothing to compare"
    assert got == want, diff_snapshots(got, want)
