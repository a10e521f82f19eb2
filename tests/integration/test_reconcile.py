"""Late-arriving records: ``obs-etl reconcile`` brings the tables level with one clean run over the final data.

On the real S3 server, once selecting files by listing hour prefixes and once through OO's
``file_list`` table in real Postgres. The generated records of a few windows are withheld while the
range is aggregated, then delivered as new files (late arrival); the clean database ran over the
complete data from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.databases import create_database, drop_database
from support.late_files import Bucket, Withheld, compact_hour, deliver, withhold
from support.tables import diff_snapshots, snapshot

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.config import EtlConfig, load_config
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import Window, parse_time, split_range, to_us
from airflow_obs_provider.jobs import age_refresh, oo_agg
from airflow_obs_provider.jobs.reconcile import ReconcileReport, reconcile
from airflow_obs_provider.jobs.status import collect_status, format_status

pytestmark = pytest.mark.integration

DATA_FROM, DATA_TO = parse_time("2026-01-01T09:50:00Z"), parse_time("2026-01-01T10:20:00Z")
RUN_FROM, RUN_TO = parse_time("2026-01-01T10:00:00Z"), parse_time("2026-01-01T10:15:00Z")
WINDOWS = list(split_range(RUN_FROM, RUN_TO, timedelta(minutes=1)))
HOUR = parse_time("2026-01-01T10:00:00Z")
GRAPH_AT = RUN_TO  # the age-refresh window [10:05, 10:15) reads the bucket [10:10, 10:15)
NOW = DATA_TO + timedelta(hours=1)  # every window is within the 5-hour horizon
T = to_us(HOUR)
MIN = 60_000_000

# (stream type, stream, withheld [from, to) in minutes after 10:00)
LATE = [
    ("metrics", "http_server_requests_total", 3.0, 4.5),  # a counter: minutes 3-4 and the lookback of 4-9
    ("logs", "default", 6.0, 7.0),  # the bucket [10:05, 10:10), closed by the window ending 10:10
    ("traces", "default", 11.0, 11.5),  # the bucket [10:10, 10:15), closed by the window ending 10:15
]
# Windows whose reads include withheld records: metrics [start - 5m, end), traces/logs the closed buckets.
AFFECTED = sorted({w for w in WINDOWS if w.start - timedelta(minutes=5) < parse_time("2026-01-01T10:04:30Z")
                   and w.end > parse_time("2026-01-01T10:03:00Z")}
                  | {Window(parse_time("2026-01-01T10:09:00Z"), parse_time("2026-01-01T10:10:00Z")),
                     Window(parse_time("2026-01-01T10:14:00Z"), parse_time("2026-01-01T10:15:00Z"))})


@dataclass
class Scenario:
    mode: str
    cfg: EtlConfig
    bucket: Bucket
    secrets: SourceSecrets
    clean: str  # database filled by one clean run over the final data
    pg: str  # database aggregated before the late records arrived


def _secrets(s3_env: dict[str, str], file_list_url: str | None) -> SourceSecrets:
    return SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"], s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                         s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"],
                         file_list_url=file_list_url)


def _aggregate(sc: Scenario, pg: str) -> None:
    for w in WINDOWS:
        assert oo_agg.run(sc.cfg, "acme", w, pg_url=pg, secrets=sc.secrets).status == "success"
    assert age_refresh.run("acme", GRAPH_AT, pg_url=pg).status == "success"


@pytest.fixture(scope="module", params=["listing", "file_list"])
def scenario(request: pytest.FixtureRequest, pg_server_url: str, s3_env: dict[str, str], s3_bucket: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    mode = request.param
    dbs = [create_database(pg_server_url, f"t_reconcile_{mode}_{name}") for name in ("clean", "late", "oo_meta")]
    clean, late, meta = dbs
    file_list_url = meta if mode == "file_list" else None
    secrets = _secrets(s3_env, file_list_url)
    storage = Storage.s3(s3_bucket, mode, Storage.from_uri(f"s3://{s3_bucket}/{mode}", secrets).fs)
    generate(storage, DATA_FROM, DATA_TO, seed=11, file_list_url=file_list_url)
    folder = tmp_path_factory.mktemp(f"reconcile_{mode}")
    (folder / "etl.yaml").write_text(
        f"tenants:\n  - code: acme\n    source: {{kind: s3, bucket: {s3_bucket}, prefix: {mode}, org: default}}\n")
    sc = Scenario(mode, load_config(folder / "etl.yaml"), Bucket(storage, file_list_url=file_list_url), secrets,
                  clean, late)
    for db in (clean, late):
        bootstrap(db)
    _aggregate(sc, clean)  # the final data, read once
    withheld = [withhold(sc.bucket, t, s, HOUR, T + int(a * MIN), T + int(b * MIN)) for t, s, a, b in LATE]
    _aggregate(sc, late)  # what oo-agg saw at minute 12
    for w in withheld:
        deliver(sc.bucket, w)  # ... and the records that arrived afterwards
    yield sc
    for db in dbs:
        drop_database(pg_server_url, db)


def _attempts(pg: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT job, window_from, window_to, status, attempts FROM etl_job_run ORDER BY 1, 2, 3")
        return cur.fetchall()


def _log_counts(pg: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute("""SELECT p.bucket, r.urn, sum(p.count), sum(p.count_error) FROM log_pattern_5m p
                       JOIN dim_resource r ON r.id = p.resource_id GROUP BY 1, 2 ORDER BY 1, 2""")
        return cur.fetchall()


def _graph(pg: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT src_urn, dst_urn, calls, errors, rps, err_rate, p95, last_seen, as_of "
                    "FROM active_call_edge ORDER BY 1, 2")
        return cur.fetchall()


def _reconcile(sc: Scenario) -> ReconcileReport:
    return reconcile(sc.cfg, "acme", pg_url=sc.pg, now=NOW, secrets=sc.secrets)


def test_before_reconcile_the_late_records_are_missing(scenario: Scenario) -> None:
    tables = ("metric_1m", "service_call_5m")
    assert diff_snapshots(snapshot(scenario.pg, tables), snapshot(scenario.clean, tables))
    assert _log_counts(scenario.pg) != _log_counts(scenario.clean)


def test_reconcile_reruns_exactly_the_windows_that_gained_records(scenario: Scenario) -> None:
    before = {(r[1], r[2]): r for r in _attempts(scenario.pg) if r[0] == "oo-agg"}
    report = _reconcile(scenario)
    assert report.mode == scenario.mode
    assert report.checked == len(WINDOWS) and report.no_digest == 0 and not report.shrunk
    assert [c.window for c in report.changed] == AFFECTED
    assert all(c.check.new_records > c.check.old_records for c in report.changed)
    assert report.ok
    assert [(r.job, r.window) for r in report.reruns if r.job == "oo-agg"] == [("oo-agg", w) for w in AFFECTED]
    # every withheld record counted once, in the window (minute or bucket) it belongs to
    with psycopg2.connect(scenario.pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM etl_job_run WHERE details ? 'late_data'")
        assert cur.fetchone()[0] == len(AFFECTED)
    after = {(r[1], r[2]): r for r in _attempts(scenario.pg) if r[0] == "oo-agg"}
    for key, row in after.items():
        assert row[4] == before[key][4] + (1 if Window(*key) in AFFECTED else 0), key


def test_after_reconcile_the_tables_equal_one_clean_run_over_the_final_data(scenario: Scenario) -> None:
    tables = ("metric_1m", "service_call_5m")
    assert diff_snapshots(snapshot(scenario.pg, tables), snapshot(scenario.clean, tables)) == ""
    assert _log_counts(scenario.pg) == _log_counts(scenario.clean)


def test_the_current_graph_refresh_reading_a_recomputed_bucket_was_rerun(scenario: Scenario) -> None:
    ages = [r for r in _attempts(scenario.pg) if r[0] == "age-refresh"]
    assert [(r[2], r[3], r[4]) for r in ages] == [(GRAPH_AT, "success", 2)]
    assert _graph(scenario.pg) == _graph(scenario.clean)


def test_a_second_reconcile_with_nothing_new_reruns_nothing(scenario: Scenario) -> None:
    before = _attempts(scenario.pg)
    report = _reconcile(scenario)
    assert report.reruns == [] and report.changed == [] and report.compacted == 0
    assert report.unchanged == len(WINDOWS)
    assert report.files_read == 0  # nothing the digests do not know was opened
    assert _attempts(scenario.pg) == before


def test_compaction_of_unchanged_data_triggers_no_rerun(scenario: Scenario) -> None:
    before_ledger = _attempts(scenario.pg)
    tables = ("metric_1m", "service_call_5m", "log_pattern_5m")
    before_tables = snapshot(scenario.pg, tables)
    replaced = []
    for stream_type, stream, _, _ in LATE:
        replaced += compact_hour(scenario.bucket, stream_type, stream, HOUR, leftovers=True)[0]
    # while the replaced files still stand in the bucket (file_list: already marked deleted) ...
    during = _reconcile(scenario)
    for key in replaced:  # ... and once OpenObserve has deleted them
        scenario.bucket.delete(key)
    report = _reconcile(scenario)
    for r in (during, report):
        assert r.reruns == [] and r.changed == [] and r.shrunk == []
    # every window read one of the compacted streams; a listing sees the compaction once the replaced
    # files are gone, file_list at once
    assert (during.compacted, report.compacted) == ((0, len(WINDOWS)) if scenario.mode == "listing"
                                                     else (len(WINDOWS), 0))
    assert _attempts(scenario.pg) == before_ledger
    assert snapshot(scenario.pg, tables) == before_tables
    # the digests now name the merged files: the next pass opens nothing
    again = _reconcile(scenario)
    assert again.compacted == 0 and again.unchanged == len(WINDOWS) and again.files_read == 0


def test_the_cli_prints_what_it_checked_and_exits_0(scenario: Scenario, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    if scenario.bucket.file_list_url:
        monkeypatch.setenv("OO_FILE_LIST_URL", scenario.bucket.file_list_url)
    cfg_path = tmp_path / "etl.yaml"
    cfg_path.write_text(f"tenants:\n  - code: acme\n    source: {dict(scenario.cfg.tenant('acme').source)}\n")
    # the data is from 2026-01-01: a horizon reaching back to it
    horizon = f"{int((parse_time('2030-01-01T00:00:00Z') - DATA_FROM).total_seconds() // 3600)}h"
    rc = main(["reconcile", "--config", str(cfg_path), "--tenant", "acme", "--horizon", horizon,
               "--pg-url", scenario.pg])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"checked {len(WINDOWS)} oo-agg windows" in out
    assert f"through {scenario.mode}" in out and "gained records 0" in out


def test_status_lists_the_late_data_reruns(scenario: Scenario) -> None:
    statuses = collect_status(scenario.pg)
    oo = next(st for st in statuses if st.job == "oo-agg")
    assert sorted(Window(r.window_from, r.window_to) for r in oo.late_reruns) == AFFECTED
    assert all(r.new_records > r.old_records for r in oo.late_reruns)
    text = "\n".join(format_status(statuses, now=NOW))
    assert f"late data: {len(AFFECTED)} window(s) rerun in the last 24 h" in text


def _rows_between(table: pa.Table, lo: int, hi: int) -> pa.Table:
    ts = table.column("_timestamp")
    return table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))


def test_an_unreadable_late_file_is_retried_by_the_next_pass(scenario: Scenario) -> None:
    # A late object that cannot be read yet: file_list's records count it and the rerun fails; a
    # listing must open it to count it, so the window is reported unchecked. Either way, not ok.
    window = Window(parse_time("2026-01-01T10:12:00Z"), parse_time("2026-01-01T10:13:00Z"))
    stream = "container_memory_working_set_bytes"
    # more samples for the window's first 20 seconds (copies of known ones: new records all the same)
    lo, hi = to_us(window.start), to_us(window.start) + 20_000_000
    table = next(t for t in (_rows_between(scenario.bucket.read(k), lo, hi)
                             for k in scenario.bucket.live_keys("metrics", stream, HOUR)) if t.num_rows)
    key = deliver(scenario.bucket, Withheld("metrics", stream, HOUR, [table]))[0]
    scenario.bucket.storage.write_bytes(key, b"not parquet yet")
    failed = _reconcile(scenario)
    assert not failed.ok
    if scenario.mode == "file_list":
        assert window in [c.window for c in failed.changed]
        assert {r.status for r in failed.reruns if r.window == window} == {"failed"}
    else:
        assert window in [w for w, _ in failed.unreadable] and failed.reruns == []
    scenario.bucket.write(key, table)  # the object is complete now
    healed = _reconcile(scenario)
    assert healed.ok and window in [r.window for r in healed.reruns if r.status == "success"]
    assert [r[3] for r in _attempts(scenario.pg) if r[0] == "oo-agg" and r[1] == window.start] == ["success"]
    again = _reconcile(scenario)
    assert again.ok and again.reruns == []


def test_a_source_that_lost_records_is_reported_not_rerun(scenario: Scenario) -> None:
    before = _attempts(scenario.pg)
    keys = scenario.bucket.live_keys("metrics", "container_cpu_usage_ratio", HOUR)
    scenario.bucket.delete(keys[0])
    report = _reconcile(scenario)
    assert report.shrunk and report.reruns == [] and report.changed == []
    assert _attempts(scenario.pg) == before
