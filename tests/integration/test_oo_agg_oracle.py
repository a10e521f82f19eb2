"""oo-agg on generated OO-layout data equals an independent oracle; reruns are byte-identical."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support import oracle
from support.oo_agg_db import (
    assert_rows_equal,
    call_rows,
    dump_tables,
    ledger,
    metric_rows,
    write_config,
)

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

DATA_FROM, DATA_TO = "2024-05-01T10:00:00Z", "2024-05-01T10:17:00Z"
RUN_FROM, RUN_TO = "2024-05-01T10:01:00Z", "2024-05-01T10:11:00Z"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oo_oracle")
    generate(Storage.local(root / "oo"), parse_time(DATA_FROM), parse_time(DATA_TO), profile="seed", seed=7)
    write_config(root, "{kind: local, path: oo, org: default}")
    return root


@pytest.fixture(scope="module")
def ran(data_dir: Path, pg_url: str) -> str:
    rc = main(["run", "oo-agg", "--config", str(data_dir / "etl.yaml"), "--tenant", "acme",
               "--from", RUN_FROM, "--to", RUN_TO, "--pg-url", pg_url])
    assert rc == 0
    return pg_url


def test_cli_run_records_every_window_in_the_ledger(ran: str) -> None:
    rows = ledger(ran)
    assert len(rows) == 10
    assert all(r[2] == "success" for r in rows)
    assert rows[0][0] == parse_time(RUN_FROM) and rows[-1][1] == parse_time(RUN_TO)


def test_metric_1m_equals_oracle_in_every_column(ran: str, data_dir: Path) -> None:
    want = oracle.metric_rows(data_dir / "oo", to_us(parse_time(RUN_FROM)), to_us(parse_time(RUN_TO)))
    got = metric_rows(ran, "acme")
    assert {k[2] for k in want} >= {"container_cpu_usage_ratio", "http_server_requests_total",
                                    "http_server_duration_seconds"}
    assert {w["kind"] for w in want.values()} == {"gauge", "counter", "histogram"}
    assert_rows_equal(got, want)


def test_service_call_5m_equals_oracle_in_every_column(ran: str, data_dir: Path) -> None:
    b0 = to_us(parse_time("2024-05-01T10:00:00Z"))
    want = oracle.call_rows(data_dir / "oo", [b0, b0 + oracle.BUCKET])
    got = call_rows(ran, "acme")
    assert len(want) >= 10
    assert_rows_equal(got, want)


def test_service_calls_match_the_generators_ground_truth(ran: str, data_dir: Path) -> None:
    truth = pq.read_table(sorted((data_dir / "oo" / "_truth").glob("service_edges-*.parquet"))).to_pylist()
    counts: dict[tuple[int, str, str], list[int]] = {}
    b0 = to_us(parse_time("2024-05-01T10:00:00Z"))
    for e in truth:
        b = e["caller_start_us"] - e["caller_start_us"] % oracle.BUCKET
        if b0 <= b < b0 + 2 * oracle.BUCKET:
            c = counts.setdefault((b, e["src"], e["dst"]), [0, 0])
            c[0] += 1
            c[1] += int(bool(e["error"]))
    got = {k: [v["calls"], v["errors"]] for k, v in call_rows(ran, "acme").items()}
    assert got == counts


def test_locators_reproduce_what_each_row_was_computed_from(ran: str, data_dir: Path) -> None:
    import psycopg2

    conn = psycopg2.connect(ran)
    with conn.cursor() as cur:
        cur.execute("""SELECT DISTINCT l.stream_type, l.stream, l.window_from, l.window_to, l.sql_hint, l.record_count,
                              jsonb_array_length(l.object_keys), m.metric
                       FROM metric_1m m JOIN oo_locator l ON l.id = m.locator_id""")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM metric_1m WHERE locator_id IS NULL")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM service_call_5m c JOIN oo_locator l ON l.id = c.locator_id "
                    "WHERE l.stream_type = 'traces'")
        assert cur.fetchone()[0] > 0
    conn.close()
    raw = oracle.raw_rows(data_dir / "oo", "default", "metrics")
    for stream_type, stream, wfrom, wto, hint, count, nkeys, metric in rows:
        assert stream_type == "metrics" and metric in (stream, stream.removesuffix("_bucket"))
        f, t = to_us(wfrom), to_us(wto)
        assert hint == f'SELECT * FROM "{stream}" WHERE _timestamp >= {f} AND _timestamp < {t}'
        assert count == sum(1 for r in raw[stream] if f <= r["_timestamp"] < t)
        assert nkeys >= 1


def test_rerun_of_the_range_is_byte_identical(ran: str, data_dir: Path) -> None:
    before = dump_tables(ran)
    rc = main(["run", "oo-agg", "--config", str(data_dir / "etl.yaml"), "--tenant", "acme",
               "--from", RUN_FROM, "--to", RUN_TO, "--pg-url", ran])
    assert rc == 0
    assert dump_tables(ran) == before
    assert all(r[3] == 2 for r in ledger(ran))
