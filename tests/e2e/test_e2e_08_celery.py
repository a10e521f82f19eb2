"""A distributed executor for real: ``obs_oo_agg`` catch-up through Airflow 3's CeleryExecutor.

Broker: the dev stack's Redis (Debian's ``redis-server``). Result backend: the metadata database
(``db+postgresql``). Two ``airflow celery worker`` processes, each its own process group with
concurrency 2, report distinct names as ``task_instance.hostname`` (``[core] hostname_callable``,
``airflow_obs_provider.devkit.worker_hostname``). The catch-up runs the windows of four tenants; the test reads from
the metadata database which worker ran each task instance and compares the tables with one clean
``obs-etl run`` per tenant. It asserts on the job task's hostnames, not on how many map indexes a
run has, so it holds however tenants and windows are batched into tasks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from support.airflow_stack import (
    TERMINAL_RUN_STATES,
    AirflowRest,
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
    CleanRuns,
    DataRange,
    generate_data,
    obs_etl,
    run_window,
    write_config,
)
from support.tables import diff_snapshots, ledger, row_counts, snapshot

TENANTS = {"acme": 1, "globex": 2, "initech": 3, "umbrella": 4}  # tenant code -> generator seed
WINDOWS = 10  # two five-minute runs; the range starts on a 5-minute boundary, so buckets close in it
WORKERS = ("obs-worker-1", "obs-worker-2")
JOB_TASK = "aggregate"  # the task of obs_oo_agg that runs the oo-agg job


@pytest.fixture(scope="module")
def celery_range(data_range: DataRange) -> DataRange:
    return DataRange(start=data_range.start, end=data_range.start + WINDOWS * WINDOW)


@pytest.fixture(scope="module")
def celery_config(tmp_path_factory: pytest.TempPathFactory, celery_range: DataRange) -> Path:
    started = time.monotonic()
    data = generate_data(tmp_path_factory.mktemp("celery_oo_data"), celery_range, TENANTS)
    progress(f"generated OO data of {len(TENANTS)} tenants in {time.monotonic() - started:.1f}s")
    # The batched shape: a run covers five one-minute windows and a job task runs two tenants, so the two
    # runs queue four job tasks at once, more than one worker's two slots: both workers get some.
    return write_config(tmp_path_factory.mktemp("celery_config") / "etl.yaml", data, celery_range, tenants=TENANTS,
                        run_every="5m", tenants_per_task=2)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, redis_url: str,
                 celery_config: Path) -> Iterator[Airflow3]:
    """Airflow 3 with the CeleryExecutor (api-server, scheduler, dag-processor, triggerer) and two workers."""
    target = create_database(pg_server_url, "e2e_celery_target")
    obs_etl("bootstrap", "--pg-url", target)
    stack = AirflowStack(
        root=tmp_path_factory.mktemp("airflow3_celery"), dags_folder=REPO / "dags", pg_server_url=pg_server_url,
        name="af3c", executor="CeleryExecutor", celery_broker_url=redis_url,
        env_overrides={"OBS_ETL_CONFIG": str(celery_config),
                       "AIRFLOW_CONN_OBS_POSTGRES": airflow_conn_uri(target), "PG_URL": target})
    try:
        started = time.monotonic()
        rest = stack.start()  # api-server, scheduler, dag-processor and the triggerer (deferred sensors)
        for name in WORKERS:
            stack.start_celery_worker(name, concurrency=2)
        progress(f"af3c: CeleryExecutor stack and {len(WORKERS)} workers up in {time.monotonic() - started:.1f}s")
        yield Airflow3(stack=stack, rest=rest, target_url=target, config=celery_config)
    finally:
        stack.stop()
        drop_database(pg_server_url, target)


def wait_catch_up(rest: AirflowRest, rng: DataRange, timeout: float) -> list[dict[str, Any]]:
    """Wait until the runs cover every window of ``rng`` and all runs have finished (however many windows a run spans)."""
    def covered(runs: list[dict[str, Any]]) -> bool:
        spans = [run_window(r) for r in runs]
        return all(any(s <= ws and we <= e for s, e in spans) for ws, we in rng.windows())

    def done() -> list[dict[str, Any]] | None:
        if rest.stack:
            rest.stack.check_alive()
        runs = rest.dag_runs(DAG_ID)
        return runs if runs and covered(runs) and all(r["state"] in TERMINAL_RUN_STATES for r in runs) else None

    def describe() -> str:
        runs = rest.dag_runs(DAG_ID)
        return f"{DAG_ID}: {len(runs)} runs, states {dict(Counter(r['state'] for r in runs))}"

    wait_for(f"{DAG_ID} to catch up over [{rng.start:%H:%M}, {rng.end:%H:%M})", done, timeout, interval=3,
             describe=describe)
    # The scheduler creates runs progressively: look again for late ones and let them finish too.
    time.sleep(10)
    runs: list[dict[str, Any]] = wait_for("late runs to finish", done, timeout, interval=3, describe=describe)
    progress(describe())
    return runs


def task_instance_hosts(meta_url: str) -> list[tuple[str, str, int, str | None, str | None]]:
    """(task_id, run_id, map_index, hostname, state) of every task instance of the DAG, from the metadata DB."""
    with psycopg2.connect(meta_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT task_id, run_id, map_index, hostname, state FROM task_instance WHERE dag_id = %s"
                    " ORDER BY run_id, task_id, map_index", (DAG_ID,))
        rows: list[tuple[str, str, int, str | None, str | None]] = cur.fetchall()
    return rows


def test_catch_up_on_two_celery_workers_equals_one_clean_run(celery_stack: Airflow3, celery_range: DataRange,
                                                            pg_server_url: str) -> None:
    rest, stack = celery_stack.rest, celery_stack.stack
    rest.wait_dag(DAG_ID)
    started = time.monotonic()
    rest.set_paused(DAG_ID, False)
    runs = wait_catch_up(rest, celery_range, timeout=900)
    progress(f"celery catch-up: {len(runs)} runs in {time.monotonic() - started:.1f}s")
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]

    # Which worker ran what, as Airflow recorded it.
    assert stack.meta_url
    tis = task_instance_hosts(stack.meta_url)
    job_tis = [t for t in tis if t[0] == JOB_TASK]
    per_worker = Counter(host for _, _, _, host, _ in job_tis)
    progress(f"{JOB_TASK} task instances per worker: {dict(per_worker)}; all task instances per worker: "
             f"{dict(Counter(host for _, _, _, host, _ in tis))}")
    assert job_tis, f"no {JOB_TASK} task instances in the metadata DB: {tis}"
    assert all(state == "success" for *_, state in job_tis), [t for t in job_tis if t[4] != "success"]
    # Every task instance that ran ran on one of the two workers (the scheduler completes EmptyOperator
    # tasks such as ``done`` itself: they have no host), and the job's ran on both.
    assert {host for _, _, _, host, _ in tis if host} <= set(WORKERS), tis
    assert set(per_worker) == set(WORKERS), f"{JOB_TASK} did not run on both workers: {dict(per_worker)}"

    # The tables are those of one clean CLI run over the same windows, every (tenant, window) once.
    windows = sorted(run_window(r) for r in runs)
    start, end = windows[0][0], max(e for _, e in windows)
    assert start == celery_range.start and end >= celery_range.end, windows
    clean_runs = CleanRuns(pg_server_url, celery_stack.config, TENANTS)
    try:
        want = clean_runs.snapshot(start, end)
    finally:
        clean_runs.close()
    got = snapshot(celery_stack.target_url)
    progress(f"celery catch-up tables {row_counts(got)}")
    assert all(want[t] for t in ("metric_1m", "service_call_5m", "log_pattern_5m", "oo_locator", "dim_resource")), \
        f"the clean run wrote nothing to compare: {row_counts(want)}"
    assert got == want, diff_snapshots(got, want)
    minutes = [(start + i * WINDOW, start + (i + 1) * WINDOW) for i in range(int((end - start) / WINDOW))]
    assert {(code, s, e) for code, s, e, status, _ in ledger(celery_stack.target_url) if status == "success"} == \
        {(code, s, e) for code in TENANTS for s, e in minutes}
