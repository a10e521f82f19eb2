"""Airflow 3 backfills (``airflow backfill create`` and ``POST /api/v2/backfills``) over a past range
rerun completed windows, and the tables stay those of one clean run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from support.airflow_stack import progress, wait_for
from support.e2e_env import DAG_ID, TENANTS, WINDOW, Airflow3, CaughtUp, CleanRuns, parse_api_time
from support.tables import diff_snapshots, ledger, snapshot


def backfills(airflow3: Airflow3) -> list[dict[str, Any]]:
    return list(airflow3.rest.request("GET", "/backfills", params={"dag_id": DAG_ID})["backfills"])


def attempts(airflow3: Airflow3) -> dict[tuple[str, datetime], int]:
    return {(c, s): a for c, s, _, _, a in ledger(airflow3.target_url)}


def wait_backfill_done(airflow3: Airflow3, backfill_id: int, timeout: float = 420) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        airflow3.stack.check_alive()
        b = airflow3.rest.backfill(backfill_id)
        return b if b.get("completed_at") else None

    def describe() -> str:
        runs = airflow3.rest.dag_runs(DAG_ID)
        return "run states " + str(sorted({r["state"] for r in runs}))

    return wait_for(f"backfill {backfill_id} of {DAG_ID} to complete", done, timeout, interval=3,  # type: ignore[no-any-return]
                    describe=describe)


def check_reprocessed(airflow3: Airflow3, before: dict[tuple[str, datetime], int], first: datetime,
                      last: datetime, clean_runs: CleanRuns, caught_up: CaughtUp) -> None:
    runs = airflow3.rest.wait_runs(DAG_ID, len(caught_up.runs), timeout=300)
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]
    after = attempts(airflow3)
    rerun = {key for key, n in after.items() if n > before.get(key, 0)}
    rerun_starts = {s for _, s in rerun}
    # Every window of the range was reprocessed for every tenant (from/to are logical dates = window starts).
    expected = {first + i * WINDOW for i in range(int((last - first) / WINDOW) + 1)}
    assert expected <= rerun_starts, (sorted(expected), sorted(rerun_starts))
    assert {(c, s) for c in TENANTS for s in expected} <= rerun
    assert all(first <= s <= last + WINDOW for s in rerun_starts), sorted(rerun_starts)
    got = snapshot(airflow3.target_url)
    want = clean_runs.snapshot(caught_up.start, caught_up.end)
    assert got == want, diff_snapshots(got, want)


def test_backfill_create_cli_reprocesses_completed_windows_and_tables_stay_identical(
        airflow3: Airflow3, caught_up: CaughtUp, clean_runs: CleanRuns) -> None:
    first = caught_up.start + 2 * WINDOW
    last = first + 2 * WINDOW
    before = attempts(airflow3)
    known = {b["id"] for b in backfills(airflow3)}
    out = airflow3.stack.cli(["backfill", "create", "--dag-id", DAG_ID, "--from-date", first.isoformat(),
                              "--to-date", last.isoformat(), "--reprocess-behavior", "completed"], timeout=300)
    created = [b for b in backfills(airflow3) if b["id"] not in known]
    assert len(created) == 1, (out.stdout[-2000:], created)
    backfill = created[0]
    assert parse_api_time(backfill["from_date"]) == first and parse_api_time(backfill["to_date"]) == last
    progress(f"backfill {backfill['id']} created by the CLI for [{first:%H:%M}, {last:%H:%M}]")
    wait_backfill_done(airflow3, backfill["id"])
    check_reprocessed(airflow3, before, first, last, clean_runs, caught_up)


def test_backfill_rest_api_reprocesses_completed_windows_and_tables_stay_identical(
        airflow3: Airflow3, caught_up: CaughtUp, clean_runs: CleanRuns) -> None:
    last = caught_up.end - 2 * WINDOW
    first = last - timedelta(minutes=1)
    before = attempts(airflow3)
    backfill = airflow3.rest.create_backfill(DAG_ID, first.isoformat(), last.isoformat(),
                                             reprocess_behavior="completed", max_active_runs=2)
    progress(f"backfill {backfill['id']} created through the REST API for [{first:%H:%M}, {last:%H:%M}]")
    wait_backfill_done(airflow3, backfill["id"])
    check_reprocessed(airflow3, before, first, last, clean_runs, caught_up)
