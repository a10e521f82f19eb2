"""oo-agg refuses bad input before it can lose a row: a misconfigured or emptied source, a window
not yet eligible, a range too large, a bad miner option, unreadable ``_timestamp`` units, a URN
mapping naming no column, a database never bootstrapped. Each leaves every table as it was, and a
rerun with the cause fixed heals (issue 12: D1, D3, D4, D5, D6 and the "Also" list)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.databases import create_database, drop_database
from support.oo_agg_db import dump_tables, ledger, write_config

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import ConfigError, load_config
from airflow_obs_provider.engine.db import DatabaseError
from airflow_obs_provider.engine.ledger import ShrinkRefused, run_window
from airflow_obs_provider.engine.oo.source import OOReadError, SourceConfigError
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, floor_time, parse_time
from airflow_obs_provider.jobs.oo_agg import JOB, WindowNotEligible, run

pytestmark = pytest.mark.integration

T0 = parse_time("2024-05-01T10:00:00Z")
BUCKET_WINDOW = Window("2024-05-01T10:04:00Z", "2024-05-01T10:05:00Z")  # closes the 10:00 bucket
MINUTE_WINDOW = Window("2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z")


def _windows() -> list[Window]:
    return [Window(f"2024-05-01T10:0{i}:00Z", f"2024-05-01T10:0{i + 1}:00Z") for i in range(1, 6)]


@pytest.fixture(scope="module")
def local_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oo_guard")
    generate(Storage.local(root / "oo"), T0, parse_time("2024-05-01T10:08:00Z"), seed=12)
    return root


def _project(local_data: Path, tmp_path: Path, tenant: str, extra: str = "") -> Path:
    shutil.copytree(local_data / "oo", tmp_path / "oo")
    return write_config(tmp_path, "{kind: local, path: oo, org: default}", tenant=tenant, extra=extra)


def _prime(cfg_path: Path, pg_url: str, tenant: str) -> dict[str, list[str]]:
    cfg = load_config(cfg_path)
    for w in _windows():
        assert run(cfg, tenant, w, pg_url=pg_url).status == "success"
    return dump_tables(pg_url)


def _ledger_rows(pg_url: str, tenant: str) -> list[tuple[object, ...]]:
    return [(a, b, status, error) for a, b, status, _attempts, error in ledger(pg_url, tenant=tenant)]


def _status(pg_url: str, tenant: str, window: Window) -> tuple[str, str | None]:
    for a, b, status, error in _ledger_rows(pg_url, tenant):
        if (a, b) == (window.start, window.end):
            return status, error
    raise AssertionError(f"no ledger row for {window}")


def _cli(cfg_path: Path, tenant: str, pg_url: str, start: str, end: str, *extra: str) -> int:
    return main(["run", "oo-agg", "--config", str(cfg_path), "--tenant", tenant, "--from", start, "--to", end,
                 "--pg-url", pg_url, *extra])


# --------------------------------------------------------------------------- D1: source root


@pytest.mark.parametrize("source, message", [
    ("{kind: local, path: oo, org: defualt}", "source.org 'defualt' does not exist"),
    ("{kind: local, path: no_files_here, org: default}", "holds no files/ folder"),
    ("{kind: local, path: ../../../../etc, org: default}", "files/ folder"),
])
def test_a_source_root_or_org_that_does_not_exist_is_an_error(local_data: Path, pg_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str], source: str,
                                                              message: str) -> None:
    tenant = f"root{len(message)}"
    cfg_path = _project(local_data, tmp_path, tenant)
    before = _prime(cfg_path, pg_url, tenant)
    ledger_before = _ledger_rows(pg_url, tenant)
    (tmp_path / "no_files_here").mkdir()
    write_config(tmp_path, source, tenant=tenant)
    with pytest.raises(SourceConfigError, match=message.replace("(", r"\(")):
        run(load_config(cfg_path), tenant, BUCKET_WINDOW, pg_url=pg_url)
    assert _cli(cfg_path, tenant, pg_url, "2024-05-01T10:01:00Z", "2024-05-01T10:06:00Z") == 1
    assert message in capsys.readouterr().err
    assert dump_tables(pg_url) == before
    assert _ledger_rows(pg_url, tenant) == ledger_before


def test_a_missing_org_on_s3_fails_the_window_and_changes_nothing(pg_url: str, s3_env: dict[str, str],
                                                                  s3_bucket: str, tmp_path: Path) -> None:
    from airflow_obs_provider.engine.oo.storage import s3_filesystem
    from airflow_obs_provider.engine.secrets import SourceSecrets

    secrets = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                            s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                            s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    generate(Storage.s3(s3_bucket, "oo", s3_filesystem(secrets)), T0, parse_time("2024-05-01T10:02:00Z"), seed=3)
    window = Window("2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z")
    good = write_config(tmp_path, f"{{kind: s3, bucket: {s3_bucket}, prefix: oo, org: default}}", tenant="s3guard")
    assert run(load_config(good), "s3guard", window, pg_url=pg_url, secrets=secrets).status == "success"
    before = dump_tables(pg_url)
    for source, message in ((f"{{kind: s3, bucket: {s3_bucket}, prefix: oo, org: defualt}}",
                             "organisation 'defualt' (source.org) does not exist"),
                            (f"{{kind: s3, bucket: {s3_bucket}, prefix: nothing-here, org: default}}",
                             "holds no files/ folder")):
        cfg_path = write_config(tmp_path, source, tenant="s3guard")
        with pytest.raises(OOReadError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run(load_config(cfg_path), "s3guard", window, pg_url=pg_url, secrets=secrets)
        assert dump_tables(pg_url) == before
        assert _ledger_rows(pg_url, "s3guard")[0][2] == "failed"


# --------------------------------------------------------------------------- D1: shrink guard


def _remove(root: Path, pattern: str) -> dict[Path, bytes]:
    """Delete the data files matching ``pattern`` below files/default (returned to restore them)."""
    removed = {}
    for path in sorted((root / "oo" / "files" / "default").glob(pattern)):
        if path.is_file():
            removed[path] = path.read_bytes()
            path.unlink()
    assert removed, pattern
    return removed


@pytest.mark.parametrize("what", ["**/*.parquet", "metrics/*/**/*.parquet", "logs/**/*.parquet"],
                         ids=["emptied", "metrics-expired", "logs-expired"])
def test_a_source_that_lost_its_data_never_replaces_the_windows_rows(local_data: Path, pg_url: str,
                                                                     tmp_path: Path, what: str) -> None:
    tenant = f"shrink{len(what)}"
    cfg_path = _project(local_data, tmp_path, tenant)
    before = _prime(cfg_path, pg_url, tenant)
    removed = _remove(tmp_path, what)  # OpenObserve's retention, or a folder emptied by mistake
    with pytest.raises(ShrinkRefused) as err:
        run(load_config(cfg_path), tenant, BUCKET_WINDOW, pg_url=pg_url)
    text = str(err.value)
    assert str(BUCKET_WINDOW) in text and "--allow-shrink" in text and "reprocess" in text
    assert "last successful run read" in text
    assert dump_tables(pg_url) == before
    status, error = _status(pg_url, tenant, BUCKET_WINDOW)
    assert status == "failed" and "ShrinkRefused" in (error or "")
    # a second refused rerun still compares against the last success, not against the failure,
    # and so does one after the window was recorded as skipped (e.g. while its circuit was open)
    with pytest.raises(ShrinkRefused):
        run(load_config(cfg_path), tenant, BUCKET_WINDOW, pg_url=pg_url)
    run_window(JOB, tenant, BUCKET_WINDOW, lambda tx: tx.skip("circuit open"), pg_url=pg_url)
    with pytest.raises(ShrinkRefused):
        run(load_config(cfg_path), tenant, BUCKET_WINDOW, pg_url=pg_url)
    for path, data in removed.items():
        path.write_bytes(data)
    assert run(load_config(cfg_path), tenant, BUCKET_WINDOW, pg_url=pg_url).status == "success"
    assert dump_tables(pg_url) == before


def test_shrink_counts_name_the_window_and_both_record_counts(local_data: Path, pg_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _project(local_data, tmp_path, "shrinkcli")
    _prime(cfg_path, pg_url, "shrinkcli")
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rows_in FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id "
                    "WHERE t.code = 'shrinkcli' AND window_from = %s", (MINUTE_WINDOW.start,))
        (records,) = cur.fetchone()
    conn.close()
    _remove(tmp_path, "**/*.parquet")
    assert _cli(cfg_path, "shrinkcli", pg_url, "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z") == 1
    err = capsys.readouterr().err
    assert str(MINUTE_WINDOW) in err
    assert f"yields 0 records where the last successful run read {records}" in err


def test_allow_shrink_forces_the_rewrite_and_is_recorded(local_data: Path, pg_url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _project(local_data, tmp_path, "forced")
    _prime(cfg_path, pg_url, "forced")
    _remove(tmp_path, "metrics/*/**/*.parquet")
    assert _cli(cfg_path, "forced", pg_url, "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z") == 1
    assert _cli(cfg_path, "forced", pg_url, "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z", "--allow-shrink") == 0
    capsys.readouterr()
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM metric_1m m JOIN dim_tenant t ON t.id = m.tenant_id "
                    "WHERE t.code = 'forced' AND bucket = %s", (MINUTE_WINDOW.start,))
        assert cur.fetchone()[0] == 0  # forced: the window now holds what the source has
        cur.execute("SELECT status, details->>'shrink_forced' FROM etl_job_run r JOIN dim_tenant t "
                    "ON t.id = r.tenant_id WHERE t.code = 'forced' AND window_from = %s", (MINUTE_WINDOW.start,))
        assert cur.fetchone() == ("success", "true")
    conn.close()
    # the tenant's configuration can allow it too (for a planned clean-up)
    write_config(tmp_path, "{kind: local, path: oo, org: default}", tenant="forced", extra="    allow_shrink: true\n")
    _remove(tmp_path, "traces/**/*.parquet")
    assert run(load_config(cfg_path), "forced", BUCKET_WINDOW, pg_url=pg_url).status == "success"


def test_rows_of_older_versions_without_per_stream_counts_are_guarded_by_their_total(
        local_data: Path, pg_url: str, tmp_path: Path) -> None:
    cfg_path = _project(local_data, tmp_path, "legacy")
    before = _prime(cfg_path, pg_url, "legacy")
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:  # what older versions stored: rows_in only
        cur.execute("UPDATE etl_job_run SET details = details - 'last_success_records' "
                    "WHERE tenant_id = (SELECT id FROM dim_tenant WHERE code = 'legacy')")
    conn.close()
    _remove(tmp_path, "**/*.parquet")
    with pytest.raises(ShrinkRefused):
        run(load_config(cfg_path), "legacy", MINUTE_WINDOW, pg_url=pg_url)
    assert dump_tables(pg_url) == before


def test_a_quiet_window_with_no_previous_run_succeeds(local_data: Path, pg_url: str, tmp_path: Path) -> None:
    cfg_path = _project(local_data, tmp_path, "quiet")
    quiet = Window("2024-05-01T12:00:00Z", "2024-05-01T12:01:00Z")  # long after the generated data
    first = run(load_config(cfg_path), "quiet", quiet, pg_url=pg_url)
    assert (first.status, first.rows_in) == ("success", 0)
    again = run(load_config(cfg_path), "quiet", quiet, pg_url=pg_url)  # 0 -> 0 is no shrink
    assert again.status == "success"


# --------------------------------------------------------------------------- D3, D4: ranges


def test_the_cli_caps_the_number_of_windows(local_data: Path, pg_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _project(local_data, tmp_path, "capped")
    assert _cli(cfg_path, "capped", pg_url, "2000-01-01", "2010-01-01") == 1
    err = capsys.readouterr().err
    assert "5260320 windows" in err and "--max-windows 1024" in err
    assert _cli(cfg_path, "capped", pg_url, "2024-05-01T10:01:00Z", "2024-05-01T10:06:00Z",
                "--max-windows", "4") == 1
    assert "--max-windows 4" in capsys.readouterr().err
    assert _ledger_rows(pg_url, "capped") == []
    assert _cli(cfg_path, "capped", pg_url, "2024-05-01T10:01:00Z", "2024-05-01T10:06:00Z",
                "--max-windows", "5") == 0
    assert [r[2] for r in _ledger_rows(pg_url, "capped")] == ["success"] * 5


def test_a_window_not_yet_eligible_is_refused_and_never_recorded(local_data: Path, pg_url: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _project(local_data, tmp_path, "early")
    now = floor_time(datetime.now(UTC), timedelta(minutes=1))
    recent = Window(now - timedelta(minutes=2), now - timedelta(minutes=1))  # default delay: 12 minutes
    with pytest.raises(WindowNotEligible, match="not eligible before"):
        run(load_config(cfg_path), "early", recent, pg_url=pg_url)
    start = (now - timedelta(minutes=30)).isoformat()
    assert _cli(cfg_path, "early", pg_url, start, now.isoformat()) == 1
    err = capsys.readouterr().err
    assert "not eligible before" in err and "nothing was run" in err
    assert _ledger_rows(pg_url, "early") == []


# --------------------------------------------------------------------------- D5, Also: configuration


def test_a_bad_miner_option_fails_before_the_first_window(local_data: Path, pg_url: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _project(local_data, tmp_path, "badminer", extra='    patterns: {sim_th: "abc"}\n')
    before = dump_tables(pg_url)
    assert _cli(cfg_path, "badminer", pg_url, "2024-05-01T10:01:00Z", "2024-05-01T10:06:00Z") == 1
    assert "sim_th must be a number" in capsys.readouterr().err
    assert _ledger_rows(pg_url, "badminer") == []
    assert dump_tables(pg_url) == before


@pytest.mark.parametrize("mapping, window, message", [
    ('{resources: [{type: svc, urn: "urn:svc:{servce_name}"}]}', BUCKET_WINDOW, "names column(s) ['servce_name']"),
    ('{resources: [{type: svc, urn: "urn:svc:{servce_name}"}, {type: host, urn: "urn:host:{host_name}"}]}',
     BUCKET_WINDOW, "names column(s) ['servce_name']"),
    ('{resources: [{type: svc, urn: "urn:svc:{servce_name}"}]}', MINUTE_WINDOW, "no urn_mapping.resources rule"),
    ("{service_column: service_nme}", BUCKET_WINDOW, "service_column 'service_nme'"),
], ids=["bucket-window", "one-of-two-rules", "minute-window", "service-column"])
def test_a_urn_mapping_naming_a_missing_column_is_an_error(local_data: Path, pg_url: str, tmp_path: Path,
                                                           mapping: str, window: Window, message: str) -> None:
    tenant = "badurn" + str(len(mapping)) + str(window.start.minute)
    cfg_path = _project(local_data, tmp_path, tenant)
    before = _prime(cfg_path, pg_url, tenant)
    write_config(tmp_path, "{kind: local, path: oo, org: default}", tenant=tenant,
                 extra=f"    urn_mapping: {mapping}\n")
    with pytest.raises(ConfigError) as err:
        run(load_config(cfg_path), tenant, window, pg_url=pg_url)
    assert message in str(err.value)
    assert dump_tables(pg_url) == before
    assert _status(pg_url, tenant, window)[0] == "failed"


def test_a_database_never_bootstrapped_says_so(local_data: Path, pg_server_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bare = create_database(pg_server_url, "t_never_bootstrapped")
    try:
        cfg_path = _project(local_data, tmp_path, "bare")
        with pytest.raises(DatabaseError, match="never bootstrapped; run obs-etl bootstrap"):
            run(load_config(cfg_path), "bare", MINUTE_WINDOW, pg_url=bare)
        assert main(["status", "--pg-url", bare]) == 1
        assert "run obs-etl bootstrap" in capsys.readouterr().err
    finally:
        drop_database(pg_server_url, bare)


# --------------------------------------------------------------------------- D6: _timestamp


def _stream_with_bad_timestamps(tmp_path: Path, stream: str, column: pa.Array) -> Path:
    """A metrics file in the 10:00 hour whose ``_timestamp`` is not µs (no footer min_ts/max_ts)."""
    folder = tmp_path / "oo" / "files" / "default" / "metrics" / stream / "2024" / "05" / "01" / "10"
    folder.mkdir(parents=True)
    path = folder / "7000000000000000000bad.parquet"
    table = pa.table({"_timestamp": column, "__name__": pa.array([stream] * len(column)),
                      "value": pa.array([1.0] * len(column)), "service_name": pa.array(["checkout"] * len(column))})
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("values, message", [
    (pa.array(["2024-05-01T10:02:10Z", "2024-05-01T10:02:20Z"]), "_timestamp has type string"),
    (pa.array([1714557730000, 1714557740000], pa.int64()), "look like milliseconds"),
    (pa.array([1714557730000000000, 1714557740000000000], pa.int64()), "look like nanoseconds"),
], ids=["iso-text", "milliseconds", "nanoseconds"])
def test_a_timestamp_in_another_unit_fails_naming_stream_and_key(local_data: Path, pg_url: str, tmp_path: Path,
                                                                 values: pa.Array, message: str) -> None:
    tenant = "ts" + message.split()[-1]
    cfg_path = _project(local_data, tmp_path, tenant)
    before = _prime(cfg_path, pg_url, tenant)
    bad = _stream_with_bad_timestamps(tmp_path, "odd_units", values)
    with pytest.raises(OOReadError) as err:
        run(load_config(cfg_path), tenant, MINUTE_WINDOW, pg_url=pg_url)
    text = str(err.value)
    assert message in text and "metrics/odd_units" in text and bad.name in text
    assert dump_tables(pg_url) == before
    status, error = _status(pg_url, tenant, MINUTE_WINDOW)
    assert status == "failed" and bad.name in (error or "")
    shutil.rmtree(tmp_path / "oo" / "files" / "default" / "metrics" / "odd_units")
    assert run(load_config(cfg_path), tenant, MINUTE_WINDOW, pg_url=pg_url).status == "success"
    assert dump_tables(pg_url) == before


def test_the_ledger_keeps_per_stream_counts_of_the_last_success(local_data: Path, pg_url: str,
                                                                tmp_path: Path) -> None:
    cfg_path = _project(local_data, tmp_path, "counts")
    result = run(load_config(cfg_path), "counts", BUCKET_WINDOW, pg_url=pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rows_in, details->'last_success_records' FROM etl_job_run r JOIN dim_tenant t "
                    "ON t.id = r.tenant_id WHERE t.code = 'counts'")
        rows_in, parts = cur.fetchone()
    conn.close()
    assert rows_in == result.rows_in == sum(parts.values())
    assert {k.split("/")[0] for k in parts} == {"metrics", "traces", "logs"}
    assert json.dumps(parts)  # plain JSON numbers
