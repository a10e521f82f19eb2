"""Aggregation rules on tiny Arrow tables (DuckDB only, no services)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_obs_provider.engine.aggregate.calls import aggregate_calls, closed_buckets
from airflow_obs_provider.engine.aggregate.metrics import StreamFlags, aggregate_metrics, classify_stream
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.config import ConfigError
from airflow_obs_provider.engine.window import Window

M = 60_000_000
W = Window("2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z")
S = W.start_us
NO = StreamFlags(False, False, False, False, False)


def _rows(streams: list[tuple[str, pa.Table]]) -> dict[str, dict]:
    return {r["metric"]: r for r in aggregate_metrics(streams, W, UrnMapping()).rows.to_pylist()}


def test_classification_follows_flags_then_suffixes() -> None:
    assert classify_stream("lat_bucket", StreamFlags(True, False, True, False, False)) == "histogram"
    assert classify_stream("req_total", StreamFlags(False, True, False, True, False)) == "delta"
    assert classify_stream("queue_depth", StreamFlags(False, False, True, False, True)) == "gauge"
    assert classify_stream("bytes", StreamFlags(False, False, True, False, False)) == "counter"
    assert classify_stream("jobs_total", NO) == "counter"
    assert classify_stream("temperature", NO) == "gauge"


def test_counter_reset_counts_the_new_value_and_lookback_sets_the_baseline() -> None:
    t = pa.table({"_timestamp": [S - M, S + 10, S + 20, S + 30], "value": [10.0, 15.0, 3.0, 4.0],
                  "__hash__": ["a"] * 4, "service_name": ["api"] * 4})
    row = _rows([("req_total", t)])["req_total"]
    assert (row["kind"], row["sum"], row["count"]) == ("counter", 9.0, 3)
    late = pa.table({"_timestamp": [S - 6 * M, S + 10], "value": [10.0, 15.0], "__hash__": ["a"] * 2,
                     "service_name": ["api"] * 2})
    assert _rows([("req_total", late)])["req_total"]["sum"] == 0.0  # predecessor older than the lookback


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    t = pa.table({"_timestamp": [S - M] * 3 + [S + 5] * 3, "value": [0.0] * 3 + [5.0, 10.0, 10.0],
                  "le": ["1", "2", "inf"] * 2, "__hash__": ["x", "y", "z"] * 2, "service_name": ["api"] * 6})
    s = pa.table({"_timestamp": [S - M, S + 5], "value": [0.0, 12.0], "__hash__": ["q"] * 2,
                  "service_name": ["api"] * 2})
    row = _rows([("lat_bucket", t), ("lat_sum", s)])["lat"]
    assert row["kind"] == "histogram" and row["count"] == 10
    assert row["p95"] == pytest.approx(1.9) and row["avg"] == pytest.approx(1.2)


def test_closed_buckets_only_for_windows_ending_on_five_minutes() -> None:
    assert closed_buckets(S - M, S) == (S - 5 * M, S)
    assert closed_buckets(S, S + M) is None


def _spans(**cols: list) -> pa.Table:  # type: ignore[type-arg]
    return pa.table(cols)


def test_virtual_nodes_drop_ip_literals_and_fall_back_to_the_system() -> None:
    b = S - 5 * M
    t = _spans(_timestamp=[b + 1, b + 2, b + 3], trace_id=["a", "b", "c"], span_id=["1", "2", "3"],
               service_name=["api"] * 3, span_kind=["3"] * 3, duration=[1000, 2000, 3000],
               server_address=["10.0.0.1", "Pay.Example.com:443", None],
               db_system=[None, None, "redis"])
    got = {(r["src_urn"], r["dst_urn"]): r["calls"] for r in aggregate_calls([("default", t)], b, S, UrnMapping())
           .rows.to_pylist()}
    assert got == {("urn:svc:api", "urn:ext:pay.example.com"): 1, ("urn:svc:api", "urn:db:redis:redis"): 1}


def test_cross_service_internal_child_is_one_call_and_no_virtual_edge() -> None:
    b = S - 5 * M
    t = _spans(_timestamp=[b + 1, b + 2], trace_id=["t", "t"], span_id=["p", "c"],
               reference_parent_span_id=[None, "p"], service_name=["a", "b"], span_kind=["3", "1"],
               duration=[4000, 1000], peer_service=["ignored", None])
    rows = aggregate_calls([("default", t)], b, S, UrnMapping()).rows.to_pylist()
    assert [(r["src_urn"], r["dst_urn"], r["calls"], r["p50_ms"]) for r in rows] == [("urn:svc:a", "urn:svc:b", 1, 4.0)]


def test_urn_mapping_rejects_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        UrnMapping.from_config({"resource": []})
    with pytest.raises(ConfigError, match="column"):
        UrnMapping.from_config({"resources": [{"type": "svc", "urn": "urn:svc:fixed"}]})
    with pytest.raises(ConfigError, match="fallback"):
        UrnMapping.from_config({"fallback": "urn:svc:{service_name}"})
