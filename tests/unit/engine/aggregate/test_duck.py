"""The shared DuckDB plumbing: air-gapped, one database per process, isolated connections."""

from __future__ import annotations

import multiprocessing

import pyarrow as pa
import pytest

from airflow_obs_provider.engine.aggregate.duck import connect_duckdb, stream_union_view


def test_connections_cannot_fetch_extensions() -> None:
    con = connect_duckdb()
    try:
        rows = con.sql("SELECT current_setting('autoinstall_known_extensions'), "
                       "current_setting('autoload_known_extensions')").fetchall()
    finally:
        con.close()
    assert rows == [(False, False)]


def test_connections_do_not_see_each_others_views_or_registrations() -> None:
    first, second = connect_duckdb(), connect_duckdb()
    try:
        stream_union_view(first, "pts", [pa.table({"v": [1, 2]})], {"v": "BIGINT"})
        assert first.sql("SELECT sum(v) FROM pts").fetchall() == [(3,)]
        with pytest.raises(Exception, match="pts"):
            second.sql("SELECT * FROM pts").fetchall()
        with pytest.raises(Exception, match="pts_0__raw"):
            second.sql("SELECT * FROM pts_0__raw").fetchall()
    finally:
        first.close()
        second.close()


def test_a_closed_connection_leaves_nothing_behind_for_the_next_window() -> None:
    con = connect_duckdb()
    con.execute("CREATE TEMP TABLE leftover AS SELECT 1 AS x")
    con.close()
    fresh = connect_duckdb()
    try:
        assert fresh.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'leftover'").fetchall() == [(0,)]
    finally:
        fresh.close()


def _query_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    con = connect_duckdb()
    queue.put(con.sql("SELECT sum(range) FROM range(1000)").fetchall()[0][0])
    con.close()


def test_a_forked_child_can_still_aggregate() -> None:
    parent = connect_duckdb()  # the parent's database exists before the fork
    parent.close()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_query_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 499500
