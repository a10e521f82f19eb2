"""Catch-up through a real Airflow 3 scheduler gives the tables of one clean ``obs-etl run``."""

from __future__ import annotations

from support.airflow_stack import progress
from support.e2e_env import (
    DAG_ID,
    TENANTS,
    WINDOW,
    WINDOWS,
    Airflow3,
    CaughtUp,
    CleanRuns,
    DataRange,
    run_window,
)
from support.tables import diff_snapshots, ledger, row_counts, snapshot


def test_catchup_of_ten_windows_equals_one_clean_run(airflow3: Airflow3, caught_up: CaughtUp, data_range: DataRange,
                                                     clean_runs: CleanRuns) -> None:
    runs = caught_up.runs
    progress(f"catch-up: {len(runs)} runs in {caught_up.seconds:.1f}s")
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]
    windows = sorted(run_window(r) for r in runs)
    # Windows tile the covered range: one-minute wide, contiguous, no duplicates.
    assert all(end - start == WINDOW for start, end in windows), windows
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False)), windows
    assert windows[0][0] == data_range.start
    assert set(data_range.windows()) <= set(windows), "catch-up missed windows of the configured range"
    assert len(windows) >= WINDOWS

    # Every tenant's aggregate ran in every run (the mapped task over tenants).
    for run in runs:
        tis = airflow3.rest.task_instances(DAG_ID, run["dag_run_id"])
        aggregates = [t for t in tis if t["task_id"] == "aggregate"]
        assert sorted(t["rendered_map_index"] for t in aggregates) == sorted(TENANTS), aggregates
        assert all(t["state"] == "success" for t in aggregates)

    got = snapshot(airflow3.target_url)
    want = clean_runs.snapshot(caught_up.start, caught_up.end)
    progress(f"catch-up tables {row_counts(got)}")
    assert all(want[t] for t in ("metric_1m", "service_call_5m", "log_pattern_5m", "oo_locator", "dim_resource")), \
        f"the clean run wrote nothing to compare: {row_counts(want)}"
    assert got == want, diff_snapshots(got, want)
    ledger_rows = ledger(airflow3.target_url)
    assert {(code, s, e) for code, s, e, status, _ in ledger_rows if status == "success"} == \
        {(code, s, e) for code in TENANTS for s, e in windows}
