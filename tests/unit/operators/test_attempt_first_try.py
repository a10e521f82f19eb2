"""Which try began the task's current attempt (a start or a clear): the windows its retries skip."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_obs_provider.operators.base import attempt_first_try


def _context(try_number: int, max_tries: int, retries: int) -> dict[str, object]:
    # The fields Airflow's task instance carries (RuntimeTaskInstance in 3.x, TaskInstance in 2.11).
    return {"ti": SimpleNamespace(try_number=try_number, max_tries=max_tries, task=SimpleNamespace(retries=retries))}


def test_a_first_run_and_its_automatic_retries_are_one_attempt() -> None:
    # At the start Airflow sets max_tries = retries; automatic retries keep it.
    assert [attempt_first_try(_context(t, 4, 4)) for t in (1, 2, 3, 4, 5)] == [1, 1, 1, 1, 1]


def test_a_clear_starts_a_new_attempt_and_its_retries_belong_to_it() -> None:
    # A clear after try 2 sets max_tries = 2 + retries; the next try is 3.
    assert attempt_first_try(_context(3, 6, 4)) == 3
    assert attempt_first_try(_context(4, 6, 4)) == 3
    # A clear after every retry was used (try 5 failed): the attempt starts at try 6.
    assert attempt_first_try(_context(6, 9, 4)) == 6


def test_without_retries_every_try_is_its_own_attempt() -> None:
    assert attempt_first_try(_context(1, 0, 0)) == 1
    assert attempt_first_try(_context(2, 1, 0)) == 2  # cleared once


def test_without_airflow_ids_the_current_try_is_the_attempt() -> None:
    assert attempt_first_try({}) == 1
    assert attempt_first_try({"ti": SimpleNamespace(try_number=3)}) == 3
