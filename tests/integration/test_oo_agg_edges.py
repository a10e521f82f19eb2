"""Hand-made OO-layout files: window boundaries, schema drift across files, malicious strings stay data."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.oo_agg_db import call_rows, metric_rows, write_config

from airflow_obs_provider.cli import main
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

FROM, TO = "2024-05-01T10:01:00Z", "2024-05-01T10:05:00Z"
F, T = to_us(parse_time(FROM)), to_us(parse_time(TO))
EVIL = "Évil'); DROP TABLE metric_1m; --\"x\\y 😀"
SECRET = "hunter2-very-secret"


def _write(root: Path, stream_type: str, stream: str, name: str, table: pa.Table) -> None:
    d = root / "oo" / "files" / "default" / stream_type / stream / "2024" / "05" / "01" / "10"
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, d / f"{name}.parquet")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> str:
    root = tmp_path_factory.mktemp("oo_edges")
    # boundaries: at from, just before to, at to (excluded)
    _write(root, "metrics", "edge_gauge", "a", pa.table({
        "_timestamp": [F, T - 1, T], "value": [1.0, 2.0, 100.0], "__hash__": ["s1"] * 3,
        "service_name": ["svc-a"] * 3}))
    # drift: the same stream in two files, value once as text, __hash__ int vs text, an extra column
    _write(root, "metrics", "drift_gauge", "a", pa.table({
        "_timestamp": [F + 10], "value": [1.5], "__hash__": [7], "service_name": ["svc-a"]}))
    _write(root, "metrics", "drift_gauge", "b", pa.table({
        "_timestamp": [F + 20], "value": ["3.5"], "__hash__": ["7"], "service_name": ["svc-a"],
        "extra_col": [True]}))
    # malicious strings as service name and labels; a secret-looking label is masked
    _write(root, "metrics", "evil_gauge", "a", pa.table({
        "_timestamp": [F + 5], "value": [4.0], "service_name": [EVIL], "host_name": ["h'; SELECT 1;--"],
        "api_token": [SECRET]}))
    # spans: a call started just before the bucket end, its server answers after it (inside slack);
    # a call starting exactly at the bucket end belongs to the next bucket
    _write(root, "traces", "default", "a", pa.table({
        "_timestamp": [T - 1, T + 500_000, T, T + 10],
        "trace_id": ["t1", "t1", "t2", "t2"], "span_id": ["c1", "s1", "c2", "s2"],
        "reference_parent_span_id": [None, "c1", None, "c2"],
        "service_name": ["svc-a", EVIL, "svc-a", EVIL], "span_kind": ["3", "2", "3", "2"],
        "span_status": ["OK", "ERROR", "OK", "OK"], "duration": [2500, 1000, 100, 50]}))
    cfg = write_config(root, "{kind: local, path: oo, org: default}",
                       extra="    urn_mapping: {label_columns: [host_name, api_token]}\n")
    assert main(["run", "oo-agg", "--config", str(cfg), "--tenant", "acme", "--from", FROM, "--to", TO,
                 "--pg-url", pg_url]) == 0
    return pg_url


def test_records_at_from_and_just_before_to_count_and_at_to_does_not(ran: str) -> None:
    rows = {k: v for k, v in metric_rows(ran, "acme").items() if k[2] == "edge_gauge"}
    assert rows == {
        (F, "urn:svc:svc-a", "edge_gauge"): {"kind": "gauge", "avg": 1.0, "max": 1.0, "p95": 1.0, "min": 1.0,
                                             "count": 1, "sum": 1.0},
        (T - 60_000_000, "urn:svc:svc-a", "edge_gauge"): {"kind": "gauge", "avg": 2.0, "max": 2.0, "p95": 2.0,
                                                          "min": 2.0, "count": 1, "sum": 2.0},
    }


def test_schema_drift_across_files_is_unioned_and_cast(ran: str) -> None:
    row = metric_rows(ran, "acme")[(F, "urn:svc:svc-a", "drift_gauge")]
    assert row == {"kind": "gauge", "avg": 2.5, "max": 3.5, "p95": pytest.approx(3.4), "min": 1.5, "count": 2,
                   "sum": 5.0}


def test_malicious_strings_stay_data_and_secrets_are_masked(ran: str) -> None:
    urn = "urn:svc:" + EVIL.lower()
    assert (F, urn, "evil_gauge") in metric_rows(ran, "acme")
    with psycopg2.connect(ran) as conn, conn.cursor() as cur:
        cur.execute("SELECT type, labels FROM dim_resource WHERE urn = %s", (urn,))
        rtype, labels = cur.fetchone()
        cur.execute("SELECT to_regclass('metric_1m') IS NOT NULL")
        assert cur.fetchone()[0]
    assert rtype == "svc"
    assert labels["service_name"] == EVIL and labels["host_name"] == "h'; SELECT 1;--"
    assert labels["api_token"] == "<SECRET>" and SECRET not in str(labels)


def test_call_crossing_the_bucket_end_is_paired_and_bucketed_by_caller_start(ran: str) -> None:
    calls = call_rows(ran, "acme")
    b = T - 300_000_000
    assert calls == {(b, "urn:svc:svc-a", "urn:svc:" + EVIL.lower()): {
        "calls": 1, "errors": 1, "rps": 1 / 300, "err_rate": 1.0, "p50_ms": 2.5, "p95_ms": 2.5}}
