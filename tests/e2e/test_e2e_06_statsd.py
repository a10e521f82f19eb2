"""The product's metrics reach a StatsD server through Airflow's Stats during real DAG runs."""

from __future__ import annotations

from pathlib import Path

from support.airflow_stack import wait_for
from support.e2e_env import DAG_ID, Airflow3, CaughtUp, CleanRuns, run_window
from support.statsd_listener import StatsdListener
from support.tables import diff_snapshots, snapshot

PREFIX = "airflow.obs_etl.oo_agg."


def test_statsd_receives_records_rows_batch_seconds_and_lag(airflow3: Airflow3, caught_up: CaughtUp,
                                                           statsd: StatsdListener) -> None:
    records = statsd.wait_for(PREFIX + "records_read", timeout=60)
    rows = statsd.wait_for(PREFIX + "rows_written", timeout=60)
    batch = statsd.wait_for(PREFIX + "batch_seconds", timeout=60)
    lag = statsd.wait_for(PREFIX + "window_lag_seconds", timeout=60)
    assert all(m.kind == "c" for m in records + rows)
    assert all(m.kind == "ms" for m in batch)
    assert all(m.kind == "g" for m in lag)
    # Counted once per (tenant, window) at least, with the records really read and rows written.
    windows = statsd.matching(PREFIX + "windows")
    assert len(windows) >= 2 * len(caught_up.runs)
    assert sum(m.value for m in records) > 0 and sum(m.value for m in rows) > 0
    assert all(m.value >= 0 for m in batch)
    # The catch-up windows were 30-40 minutes old when they ran: the lag says so.
    assert max(m.value for m in lag) > 25 * 60


def test_statsd_counts_a_failing_tenant_and_the_retry_heals_it(airflow3: Airflow3, caught_up: CaughtUp,
                                                              statsd: StatsdListener, clean_runs: CleanRuns,
                                                              e2e_data: Path) -> None:
    """Corrupt one tenant's Parquet files, rerun a window: that tenant fails (counted), the other succeeds;
    with the files back, the retry succeeds and the tables are again those of one clean run."""
    rest = airflow3.rest
    run = caught_up.runs[1]
    run_id = run["dag_run_id"]
    start, _ = run_window(run)
    bad, good = "globex", "acme"
    hour_dirs = [p for p in (e2e_data / bad / "files").glob(f"*/*/*/{start:%Y/%m/%d/%H}") if p.is_dir()]
    originals = {p: p.read_bytes() for d in hour_dirs for p in d.rglob("*.parquet")}
    assert originals, f"no Parquet files of {bad} for hour {start:%Y-%m-%d %H}"
    failures_before = len(statsd.matching(PREFIX + "failures"))
    names = {t["map_index"]: t["rendered_map_index"] for t in rest.task_instances(DAG_ID, run_id)
             if t["task_id"] == "aggregate"}
    assert sorted(names.values()) == sorted([bad, good]), names
    try:
        for path in originals:
            path.write_bytes(b"this is not parquet")
        rest.clear_task_instances(DAG_ID, run_id=run_id)

        def tenant_states() -> dict[str, str | None]:
            # A try that failed has no rendered map index (the tenant name): map it by index.
            return {names.get(t["map_index"], t["rendered_map_index"]): t["state"]
                    for t in rest.task_instances(DAG_ID, run_id) if t["task_id"] == "aggregate"}

        wait_for(f"{bad}'s aggregate to fail and {good}'s to succeed", lambda: (
            (s := tenant_states()).get(bad) in ("up_for_retry", "failed") and s.get(good) == "success"),
            timeout=300, interval=3, describe=lambda: str(tenant_states()))
        failures = statsd.wait_for(PREFIX + "failures", timeout=60)
        assert len(failures) > failures_before
        assert all(m.kind == "c" for m in failures)
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
    # The retry (exponential backoff from 20 s) reads the restored files.
    final = rest.wait_run(DAG_ID, run_id, timeout=420)
    assert final["state"] == "success"
    got = snapshot(airflow3.target_url)
    want = clean_runs.snapshot(caught_up.start, caught_up.end)
    assert got == want, diff_snapshots(got, want)
