"""Pure parts of engine/age_graph.py: the SQL file's sections, the active window and the rps denominator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from airflow_obs_provider.devkit.bench import age_refresh as age_refresh_bench
from airflow_obs_provider.engine import age_graph
from airflow_obs_provider.engine.age_graph import (
    active_window_ending,
    covered_seconds,
    refresh_params,
    sql_sections,
)
from airflow_obs_provider.engine.window import Window, WindowError

T = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)


def test_sql_sections_cover_every_statement_the_refresh_runs() -> None:
    sections = sql_sections()
    source = open(age_graph.__file__).read()
    used = set(re.findall(r'q\["(\w+)"\]', source)) | set(re.findall(r'sql_sections\(\)\["(\w+)"\]', source))
    assert used, "the module should name its statements"
    assert used <= set(sections), f"missing sections: {used - set(sections)}"
    assert all(text for text in sections.values())


def test_sql_sections_cover_every_statement_the_age_refresh_bench_runs() -> None:
    source = open(age_refresh_bench.__file__).read()
    used = set(re.findall(r'sql_sections\(\)\["(\w+)"\]', source))
    assert used, "the bench should name the statements it shares with the job"
    assert used <= set(sql_sections()), f"missing sections: {used - set(sql_sections())}"


def test_refresh_params_name_every_window_parameter_of_the_sql() -> None:
    window = active_window_ending(T)
    params = refresh_params(42, window)
    assert params == {"tenant_id": 42, "tenant_key": "42", "window_from": window.start, "window_to": T,
                      "covered_seconds": 600.0}
    # every placeholder of the statements run with these params alone is supplied
    for name in ("lock_tenant", "applied_at", "relational_sync", "graph_insert_vertices", "graph_sync_edges",
                 "graph_delete_vertices"):
        assert set(re.findall(r"%\((\w+)\)s", sql_sections()[name])) <= set(params), name


def test_sql_sections_take_user_data_only_as_parameters() -> None:
    for name, text in sql_sections().items():
        assert "{" not in text and "format(" not in text.lower(), name
        assert set(re.findall(r"%\((\w+)\)s", text)) <= {
            "tenant_id", "tenant_key", "window_from", "window_to", "covered_seconds", "graph_mode", "edges",
            "enable_nestloop"}, name


def test_sql_sections_reject_duplicates_and_empty_files() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        sql_sections("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(ValueError, match="no '-- name:' sections"):
        sql_sections("SELECT 1;")
    assert sql_sections("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n") == {"a": "SELECT 1;", "b": "SELECT 2;"}


def test_active_window_ends_at_t_and_spans_whole_buckets() -> None:
    assert active_window_ending(T) == Window(T - timedelta(minutes=10), T)
    assert active_window_ending(T, timedelta(minutes=15)).start == T - timedelta(minutes=15)
    for bad in (timedelta(minutes=7), timedelta(minutes=0), timedelta(minutes=-10), timedelta(minutes=2)):
        with pytest.raises(WindowError, match="multiple of 5 minutes"):
            active_window_ending(T, bad)


@pytest.mark.parametrize(("start", "end", "seconds"), [
    ("12:00", "12:10", 600.0),   # T on the grid: two complete buckets
    ("11:57", "12:07", 300.0),   # T off the grid: only [12:00, 12:05) fits
    ("12:00", "12:05", 300.0),
    ("11:00", "12:00", 3600.0),
])
def test_covered_seconds_counts_complete_buckets_inside_the_window(start: str, end: str, seconds: float) -> None:
    def at(hm: str) -> datetime:
        return datetime.fromisoformat(f"2024-05-01T{hm}:00+00:00")

    assert covered_seconds(Window(at(start), at(end))) == seconds


def test_covered_seconds_refuses_a_window_without_a_complete_bucket() -> None:
    with pytest.raises(WindowError, match="no complete 5-minute bucket"):
        covered_seconds(Window(datetime(2024, 5, 1, 12, 1, tzinfo=UTC), datetime(2024, 5, 1, 12, 6, tzinfo=UTC)))
