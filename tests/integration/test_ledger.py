"""The exactly-once window transaction (design §2) on the real Postgres."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from airflow_obs_provider.engine.ledger import RunInfo, WindowTx, run_window
from airflow_obs_provider.engine.window import Window

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _window(minute: int) -> Window:
    return Window(T0 + timedelta(minutes=minute), T0 + timedelta(minutes=minute + 1))


def _ledger(pg_url: str, job: str) -> list[tuple]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT window_from, status, attempts, rows_in, rows_out, error, dag_id, run_id, try_number, details"
            " FROM etl_job_run WHERE job = %s ORDER BY window_from", (job,))
        return cur.fetchall()


@pytest.fixture(scope="module")
def scratch_table(pg_url: str) -> str:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ledger_scratch (k text PRIMARY KEY, v int)")
        cur.execute("INSERT INTO ledger_scratch VALUES ('x', 0), ('y', 0)")
    return "ledger_scratch"


def _count(pg_url: str, key: str) -> int:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM ledger_scratch WHERE k = %s", (key,))
        return int(cur.fetchone()[0])


def test_success_commits_body_and_records_ledger(pg_url: str, scratch_table: str) -> None:
    def body(tx: WindowTx) -> None:
        tx.cur.execute("UPDATE ledger_scratch SET v = v + 1 WHERE k = 'x'")
        tx.rows_in, tx.rows_out = 10, 3
        tx.details["stage_seconds"] = {"read": 0.5}

    before = _count(pg_url, "x")
    result = run_window("t-success", "default", _window(0), body, pg_url=pg_url,
                        run_info=RunInfo("dag", "run-1", 2))
    assert result.status == "success" and (result.rows_in, result.rows_out) == (10, 3)
    assert _count(pg_url, "x") == before + 1
    [row] = _ledger(pg_url, "t-success")
    assert row[1:9] == ("success", 1, 10, 3, None, "dag", "run-1", 2)
    assert row[9] == {"stage_seconds": {"read": 0.5}}


def test_failure_rolls_back_everything_and_marks_failed_then_rerun_heals(pg_url: str, scratch_table: str) -> None:
    calls = {"n": 0}

    def body(tx: WindowTx) -> None:
        calls["n"] += 1
        tx.cur.execute("UPDATE ledger_scratch SET v = v + 100 WHERE k = 'y'")
        if calls["n"] == 1:
            raise ValueError("corrupt input in stream 'web'")

    before = _count(pg_url, "y")
    with pytest.raises(ValueError, match="corrupt input"):
        run_window("t-fail", "default", _window(1), body, pg_url=pg_url)
    assert _count(pg_url, "y") == before, "the failed window's writes must be rolled back"
    [row] = _ledger(pg_url, "t-fail")
    assert row[1] == "failed" and row[2] == 1 and "corrupt input in stream 'web'" in row[5]

    run_window("t-fail", "default", _window(1), body, pg_url=pg_url)
    [row] = _ledger(pg_url, "t-fail")
    assert row[1:3] == ("success", 2) and row[5] is None
    assert _count(pg_url, "y") == before + 100


def test_skip_is_recorded_with_its_reason(pg_url: str) -> None:
    result = run_window("t-skip", "default", _window(2), lambda tx: tx.skip("older than the applied state"),
                        pg_url=pg_url)
    assert result.status == "skipped"
    [row] = _ledger(pg_url, "t-skip")
    assert row[1] == "skipped" and row[9]["skipped_reason"] == "older than the applied state"


def test_concurrent_duplicates_of_one_window_run_one_after_the_other(pg_url: str, scratch_table: str) -> None:
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first(tx: WindowTx) -> None:
        order.append("first-start")
        inside.set()
        release.wait(10)
        order.append("first-end")

    def second(tx: WindowTx) -> None:
        order.append("second-start")

    t = threading.Thread(target=run_window, args=("t-dup", "default", _window(3), first), kwargs={"pg_url": pg_url})
    t.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=run_window, args=("t-dup", "default", _window(3), second),
                          kwargs={"pg_url": pg_url})
    t2.start()
    t2.join(1.0)
    assert t2.is_alive(), "the duplicate must wait for the window's advisory lock"
    release.set()
    t.join(10)
    t2.join(10)
    assert order == ["first-start", "first-end", "second-start"]
    [row] = _ledger(pg_url, "t-dup")
    assert row[1:3] == ("success", 2)


def test_a_deadlock_between_two_windows_is_retried_and_both_succeed(pg_url: str, scratch_table: str) -> None:
    barrier = threading.Barrier(2, timeout=20)
    attempts = {"a": 0, "b": 0}

    def locking(first: str, second: str, name: str):
        def body(tx: WindowTx) -> None:
            attempts[name] += 1
            tx.cur.execute("UPDATE ledger_scratch SET v = v + 1 WHERE k = %s", (first,))
            if attempts[name] == 1:  # only the first attempts meet, so the retry cannot deadlock again
                barrier.wait()
            tx.cur.execute("UPDATE ledger_scratch SET v = v + 1 WHERE k = %s", (second,))
        return body

    x0, y0 = _count(pg_url, "x"), _count(pg_url, "y")
    results: dict[str, object] = {}

    def run(name: str, minute: int, first: str, second: str) -> None:
        results[name] = run_window("t-deadlock", "default", _window(minute), locking(first, second, name),
                                   pg_url=pg_url)

    threads = [threading.Thread(target=run, args=("a", 10, "x", "y")),
               threading.Thread(target=run, args=("b", 11, "y", "x"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert {r.status for r in results.values()} == {"success"}  # type: ignore[attr-defined]
    assert sorted(attempts.values()) == [1, 2], "exactly one side was chosen as the deadlock victim and rerun"
    assert (_count(pg_url, "x"), _count(pg_url, "y")) == (x0 + 2, y0 + 2), "each window applied exactly once"
    rows = _ledger(pg_url, "t-deadlock")
    assert sorted(r[9].get("transient_retries", 0) for r in rows) == [0, 1]
