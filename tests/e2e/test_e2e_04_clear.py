"""Clearing one window through the REST API reruns it, and the tables stay those of one clean run."""

from __future__ import annotations

from support.airflow_stack import progress, wait_for
from support.e2e_env import DAG_ID, TENANTS, Airflow3, CaughtUp, CleanRuns, run_window
from support.tables import diff_snapshots, ledger, snapshot


def aggregate_tries(airflow3: Airflow3, run_id: str) -> dict[str, int]:
    return {t["rendered_map_index"]: int(t["try_number"])
            for t in airflow3.rest.task_instances(DAG_ID, run_id) if t["task_id"] == "aggregate"}


def test_clear_one_window_via_rest_reruns_it_and_tables_stay_identical(
        airflow3: Airflow3, caught_up: CaughtUp, clean_runs: CleanRuns) -> None:
    rest = airflow3.rest
    run = caught_up.runs[len(caught_up.runs) // 2]
    run_id = run["dag_run_id"]
    start, end = run_window(run)
    tries_before = aggregate_tries(airflow3, run_id)
    attempts_before = {(c, s): a for c, s, _, _, a in ledger(airflow3.target_url)}
    assert sorted(tries_before) == sorted(TENANTS)

    cleared = rest.clear_task_instances(DAG_ID, run_id=run_id)
    cleared_tasks = {t["task_id"] for t in cleared}
    assert {"wait_until_eligible", "select_tenants", "aggregate"} <= cleared_tasks, cleared_tasks
    progress(f"cleared {len(cleared)} task instances of {run_id}")

    def rerun_done() -> bool:
        tries = aggregate_tries(airflow3, run_id)
        state = rest.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        return state in ("success", "failed") and all(tries.get(c, 0) > n for c, n in tries_before.items())

    wait_for(f"cleared run {run_id} to run again", rerun_done, timeout=300, interval=3,
             describe=lambda: f"tries {aggregate_tries(airflow3, run_id)} (before {tries_before})")
    assert rest.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"] == "success"

    # The ledger saw one more attempt of exactly that window, for every tenant, and no other.
    attempts_after = {(c, s): a for c, s, _, _, a in ledger(airflow3.target_url)}
    rerun = {key for key, n in attempts_after.items() if n > attempts_before.get(key, 0)}
    assert rerun == {(code, start) for code in TENANTS}, rerun

    got = snapshot(airflow3.target_url)
    want = clean_runs.snapshot(caught_up.start, caught_up.end)
    assert got == want, diff_snapshots(got, want)
    progress(f"window [{start:%H:%M}, {end:%H:%M}) rerun; tables identical to the clean run")
