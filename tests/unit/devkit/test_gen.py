"""gen-oo-data: deterministic output that follows OpenObserve's layout and column conventions."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.layout import parse_key
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

FROM, TO = "2026-01-01T11:55:00Z", "2026-01-01T12:05:00Z"  # crosses an hour; holds counter resets


def digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    assert main(["gen-oo-data", "--out", str(root), "--from", FROM, "--to", TO, "--seed", "7"]) == 0
    return root


def files(root: Path, stream_type: str, stream: str = "") -> list[Path]:
    return sorted((root / "files" / "default" / stream_type / stream).rglob("*.parquet"))


def table(root: Path, stream_type: str, stream: str) -> pa.Table:
    """All rows of a stream; columns whose type differs between files read as text (plain pyarrow)."""
    tables = [pq.read_table(p) for p in files(root, stream_type, stream)]
    types: dict[str, set] = {}
    for t in tables:
        for f in t.schema:
            types.setdefault(f.name, set()).add(f.type)
    tables = [t.cast(pa.schema([pa.field(f.name, pa.string() if len(types[f.name]) > 1 else f.type)
                                for f in t.schema])) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive")


def test_same_seed_gives_identical_bytes_and_another_seed_differs(data, tmp_path):
    assert main(["gen-oo-data", "--out", str(tmp_path / "a"), "--from", FROM, "--to", TO, "--seed", "7"]) == 0
    assert digest(tmp_path / "a") == digest(data)
    generate(Storage.local(tmp_path / "b"), parse_time(FROM), parse_time(TO), seed=8)
    assert digest(tmp_path / "b") != digest(data)


def test_a_minute_is_the_same_whatever_range_it_is_generated_in(data, tmp_path):
    generate(Storage.local(tmp_path), parse_time("2026-01-01T12:00:00Z"), parse_time(TO), seed=7)
    lo = to_us(parse_time("2026-01-01T12:01:00Z"))
    hi = to_us(parse_time("2026-01-01T12:02:00Z"))

    def minute(root: Path) -> list:
        t = table(root, "logs", "default")
        t = t.filter(pc.and_(pc.greater_equal(t.column("_timestamp"), lo), pc.less(t.column("_timestamp"), hi)))
        return sorted(zip(t.column("_timestamp").to_pylist(), t.column("k8s_pod_name").to_pylist(), strict=True))

    assert minute(tmp_path) == minute(data) and len(minute(data)) == 5000


def test_every_key_follows_the_layout_and_footers_describe_the_rows(data):
    keys = [p.relative_to(data).as_posix() for p in (data / "files").rglob("*") if p.is_file()]
    assert keys
    for key in keys:
        k = parse_key(key)
        f = pq.ParquetFile(data / key)
        ts = f.read(columns=["_timestamp"]).column("_timestamp")
        meta = f.metadata.metadata
        assert int(meta[b"min_ts"]) == pc.min(ts).as_py() and int(meta[b"max_ts"]) == pc.max(ts).as_py()
        assert int(meta[b"records"]) == f.metadata.num_rows and int(meta[b"original_size"]) > 0
        assert f.metadata.row_group(0).column(0).compression == "ZSTD"
        # every record lies in the hour its folder names
        hour_us = to_us(k.hour)
        assert hour_us <= pc.min(ts).as_py() and pc.max(ts).as_py() < hour_us + 3_600_000_000
    parts = {parse_key(k).partitions for k in keys if "/k8s_events/" in k}
    assert all(len(p) == 1 and p[0][0] == "k8s_namespace_name" for p in parts) and len(parts) == 3


def test_span_columns_follow_the_contract(data):
    raw = pq.ParquetFile(files(data, "traces", "default")[0]).schema_arrow
    assert raw.field("start_time").type == pa.uint64() and raw.field("end_time").type == pa.uint64()
    assert raw.field("duration").type == pa.int64() and raw.field("span_kind").type == pa.string()
    t = table(data, "traces", "default")
    start = t.column("start_time").to_numpy().astype("int64")
    assert (t.column("_timestamp").to_numpy() == start // 1000).all()
    assert ((t.column("end_time").to_numpy().astype("int64") - start) // 1000 == t.column("duration").to_numpy()).all()
    assert set(t.column("span_kind").to_pylist()) == {"0", "1", "2", "3", "4", "5"}
    assert set(t.column("span_status").to_pylist()) == {"UNSET", "OK", "ERROR"}


def test_client_and_server_spans_pair_across_services_by_trace_and_parent(data):
    t = table(data, "traces", "default").to_pylist()
    by_id = {(s["trace_id"], s["span_id"]): s for s in t}
    pairs = Counter()
    for s in t:
        parent = by_id.get((s["trace_id"], s.get("reference_parent_span_id")))
        if s["span_kind"] == "2" and parent and parent["span_kind"] == "3":
            assert parent["service_name"] != s["service_name"]
            pairs[(parent["service_name"], s["service_name"])] += 1
    assert {("frontend", "checkout"), ("checkout", "payment"), ("frontend", "catalog"),
            ("inventory-sync", "inventory")} <= set(pairs)
    kinds = {(s["span_kind"], s.get("db_system"), s.get("messaging_system"), s.get("server_address")) for s in t}
    assert ("3", "postgresql", None, None) in kinds and ("4", None, "kafka", None) in kinds
    assert ("3", None, None, "api.stripe.com") in kinds


def test_truth_edges_match_the_client_server_pairs_in_the_raw_spans(data):
    truth = pa.concat_tables([pq.read_table(p) for p in (data / "_truth").glob("service_edges-*.parquet")])
    spans = table(data, "traces", "default").to_pylist()
    by_id = {(s["trace_id"], s["span_id"]): s for s in spans}
    raw_rpc = Counter()
    for s in spans:
        parent = by_id.get((s["trace_id"], s.get("reference_parent_span_id")))
        if s["span_kind"] == "2" and parent and parent["span_kind"] == "3":
            raw_rpc[(f"urn:svc:{parent['service_name']}", f"urn:svc:{s['service_name']}")] += 1
    rpc = truth.filter(pc.equal(truth.column("kind"), "rpc")).to_pylist()
    # the truth counts calls whose server span may fall after --to; the raw data lacks those
    truth_rpc = Counter((r["src"], r["dst"]) for r in rpc)
    for edge, n in raw_rpc.items():
        assert truth_rpc[edge] - 5 <= n <= truth_rpc[edge]
    assert any(r["error"] for r in rpc) and not all(r["error"] for r in rpc)


def test_metrics_have_gauges_counters_with_resets_and_cumulative_histograms(data):
    streams = {p.name for p in (data / "files/default/metrics").iterdir()}
    assert {"container_cpu_usage_ratio", "http_server_requests_total", "http_server_duration_seconds_bucket",
            "http_server_duration_seconds_count", "http_server_duration_seconds_sum"} <= streams
    counters = table(data, "metrics", "http_server_requests_total")
    assert set(counters.column("is_monotonic").to_pylist()) == {"true"}
    buckets = table(data, "metrics", "http_server_duration_seconds_bucket")
    assert buckets.schema.field("le").type == pa.string() and "inf" in set(buckets.column("le").to_pylist())
    by_point: dict[tuple, dict[str, float]] = {}
    for r in buckets.select(["k8s_pod_name", "_timestamp", "le", "value"]).to_pylist():
        by_point.setdefault((r["k8s_pod_name"], r["_timestamp"] // 1_000_000), {})[r["le"]] = r["value"]
    for points in by_point.values():
        values = [points[le] for le in ("0.01", "0.05", "0.1", "0.5", "1", "inf")]
        assert values == sorted(values)  # cumulative
    resets = pa.concat_tables([pq.read_table(p) for p in (data / "_truth").glob("counter_resets-*.parquet")])
    series = counters.to_pylist()
    assert resets.num_rows > 0
    for r in resets.to_pylist():  # after each reset point the raw counter went down
        s = sorted((p["_timestamp"], p["value"]) for p in series if p["__hash__"] == r["__hash__"])
        i = [ts for ts, _ in s].index(r["first_ts_after_reset"])
        assert i == 0 or s[i][1] < s[i - 1][1]


def test_logs_mix_text_and_numeric_severities_styles_and_secrets(data):
    severity_types = {pq.ParquetFile(p).schema_arrow.field("severity").type for p in files(data, "logs", "default")}
    assert severity_types == {pa.string(), pa.int64()}  # schema drift between files
    t = table(data, "logs", "default")
    text = [x for x in pc.coalesce(t.column("body"), t.column("message")).to_pylist()]
    assert any("password=" in x for x in text) and any("Bearer " in x for x in text)
    assert any("@example.com" in x for x in text)
    assert t.column("message").null_count < t.num_rows  # JSON-style senders keep their own key
    truth = pa.concat_tables([pq.read_table(p) for p in (data / "_truth").glob("log_lines-*.parquet")])
    assert truth.num_rows == t.num_rows and len(set(truth.column("template_id").to_pylist())) >= 15


def test_seed_profile_rates_per_minute(data):
    minutes = 10
    assert table(data, "logs", "default").num_rows == 5000 * minutes
    spans = table(data, "traces", "default").num_rows
    assert 900 * minutes <= spans <= 1100 * minutes
    points = sum(table(data, "metrics", p.name).num_rows for p in (data / "files/default/metrics").iterdir())
    assert 450 * minutes <= points <= 600 * minutes
