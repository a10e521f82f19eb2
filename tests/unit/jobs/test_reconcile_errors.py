"""A failed late-data rerun is reported (printed, logged, in the pass's report) without credentials."""

from __future__ import annotations

from airflow_obs_provider.jobs.reconcile import _failure_text


def test_a_failed_rerun_is_reported_by_its_first_line_with_the_password_masked() -> None:
    exc = RuntimeError("cannot query file_list in postgresql://oo:hunter2secret@meta:5432/oo\nTraceback detail")
    text = _failure_text(exc)
    assert "hunter2secret" not in text
    assert text.startswith("cannot query file_list in postgresql://oo:")
    assert "Traceback" not in text


def test_an_exception_without_text_is_named_by_its_type() -> None:
    assert _failure_text(TimeoutError()) == "TimeoutError"
