"""obs_age_refresh through the real scheduler: its deferred sensor waits for the obs_oo_agg runs covering
each five-minute window, then the graph refresh records each window's end once per tenant."""

from __future__ import annotations

from datetime import timedelta

from support.airflow_stack import progress
from support.e2e_env import TENANTS, Airflow3, CaughtUp, DataRange, run_window
from support.tables import ledger

AGE_DAG = "obs_age_refresh"
AGE_WINDOW = timedelta(minutes=5)


def test_age_refresh_waits_for_the_minutes_it_covers_and_refreshes_each_window(
        airflow3: Airflow3, caught_up: CaughtUp, data_range: DataRange) -> None:
    rest = airflow3.rest
    rest.wait_dag(AGE_DAG)
    rest.set_paused(AGE_DAG, False)
    # The configured range (10 minutes on a 5-minute boundary) holds two graph windows.
    expected = int((data_range.end - data_range.start) / AGE_WINDOW)
    runs = rest.wait_runs(AGE_DAG, expected, timeout=600, select=lambda r: run_window(r)[1] <= data_range.end)
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]
    ends = sorted(run_window(r)[1] for r in runs)
    assert ends == [data_range.start + (i + 1) * AGE_WINDOW for i in range(expected)], ends
    for run in runs:
        states = {t["task_id"]: t["state"] for t in rest.task_instances(AGE_DAG, run["dag_run_id"])
                  if t["task_id"] != "refresh_graph"}
        assert states["wait_for_oo_agg"] == "success", states
    rows = [(code, start, end, status) for code, start, end, status, _ in ledger(airflow3.target_url, "age-refresh")]
    refreshed = {(code, end) for code, _, end, status in rows if status in ("success", "skipped")}
    assert {(code, end) for code in TENANTS for end in ends} <= refreshed, rows
    progress(f"{AGE_DAG}: {len(runs)} runs, graph refreshed at {[f'{e:%H:%M}' for e in ends]} for {sorted(TENANTS)}")
