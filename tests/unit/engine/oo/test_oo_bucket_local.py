"""The bucket reader over real local folders in OpenObserve's layout."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.bucket import _row_groups
from airflow_obs_provider.engine.oo.source import OOReadError, SourceConfigError, SourceSecrets, open_source
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

H10 = to_us(parse_time("2026-01-01T10:00:00Z"))
MIN = 60_000_000


def put(root: Path, key: str, ts: list[int], footer: bool = True, row_group_size: int | None = None,
        **cols: list) -> str:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    t = pa.table({"_timestamp": pa.array(ts, pa.int64()), **cols})
    if footer:
        t = t.replace_schema_metadata({"min_ts": str(min(ts)), "max_ts": str(max(ts)), "records": str(len(ts)),
                                       "original_size": "1"})
    pq.write_table(t, path, compression="zstd", row_group_size=row_group_size)
    return key


def hour_key(stream: str, name: str, hour: str = "10", stream_type: str = "logs", sub: str = "") -> str:
    return f"files/o/{stream_type}/{stream}/2026/01/01/{hour}/{sub}{name}.parquet"


def local(root: Path, org: str = "o") -> object:
    return open_source({"kind": "local", "path": str(root), "org": org})


def test_files_outside_the_window_are_pruned_by_footer_and_not_read(tmp_path):
    early = put(tmp_path, hour_key("app", "a"), [H10 + 1, H10 + 2 * MIN], body=["x", "y"])
    inside = put(tmp_path, hour_key("app", "b"), [H10 + 5 * MIN, H10 + 5 * MIN + 7], body=["p", "q"])
    late = put(tmp_path, hour_key("app", "c"), [H10 + 50 * MIN], body=["z"])
    got = local(tmp_path).read("logs", "app", H10 + 5 * MIN, H10 + 6 * MIN)
    assert got.object_keys == (inside,)
    assert early not in got.object_keys and late not in got.object_keys
    assert sorted(got.table.column("body").to_pylist()) == ["p", "q"] and got.records == 2


def test_files_without_footer_are_pruned_by_row_group_statistics(tmp_path):
    key = put(tmp_path, hour_key("app", "nofooter"), [H10, H10 + MIN, H10 + 2 * MIN], footer=False,
              row_group_size=1, body=["a", "b", "c"])
    pf = pq.ParquetFile(tmp_path / key)
    assert _row_groups(pf, H10 + MIN, H10 + 2 * MIN) == [1]
    assert local(tmp_path).read("logs", "app", H10 + 3 * MIN, H10 + 4 * MIN).object_keys == ()
    assert local(tmp_path).read("logs", "app", H10 + MIN, H10 + 2 * MIN).table.column("body").to_pylist() == ["b"]


def test_boundary_records_start_included_end_excluded(tmp_path):
    start, end = H10 + 10 * MIN, H10 + 11 * MIN
    put(tmp_path, hour_key("app", "edge"), [start - 1, start, end - 1, end], body=["before", "at_start", "last", "at_end"])
    got = local(tmp_path).read("logs", "app", start, end)
    assert sorted(got.table.column("body").to_pylist()) == ["at_start", "last"]


def test_a_window_across_the_hour_reads_both_hour_prefixes(tmp_path):
    put(tmp_path, hour_key("app", "h10"), [H10 + 59 * MIN + 1], body=["ten"])
    put(tmp_path, hour_key("app", "h11", hour="11"), [H10 + 60 * MIN], body=["eleven"])
    got = local(tmp_path).read("logs", "app", H10 + 59 * MIN, H10 + 61 * MIN)
    assert sorted(got.table.column("body").to_pylist()) == ["eleven", "ten"]


def test_partition_folders_are_read_and_never_become_columns(tmp_path):
    put(tmp_path, hour_key("ev", "p1", sub="k8s_namespace_name=a7/"), [H10 + 1], k8s_namespace_name=["shop"])
    got = local(tmp_path).read("logs", "ev", H10, H10 + MIN)
    assert got.table.column("k8s_namespace_name").to_pylist() == ["shop"]  # the column, not the folder value


def test_non_parquet_files_and_sibling_trees_are_skipped(tmp_path, caplog):
    keep = put(tmp_path, hour_key("app", "good"), [H10 + 1], body=["ok"])
    vortex = tmp_path / hour_key("app", "v").replace(".parquet", ".vortex")
    vortex.write_bytes(b"not parquet")
    put(tmp_path, "files/o/index/app/2026/01/01/10/i.parquet", [H10 + 2], body=["index"])
    put(tmp_path, "files_all/o/logs/app/2026/01/01/10/all.parquet", [H10 + 3], body=["all"])
    with caplog.at_level(logging.WARNING):
        got = local(tmp_path).read("logs", "app", H10, H10 + MIN)
    assert got.object_keys == (keep,)
    assert "non-Parquet" in caplog.text and "compaction" in caplog.text
    assert local(tmp_path).streams("logs") == ["app"]


def test_daily_metrics_of_old_oo_versions_under_hour_00_are_found(tmp_path):
    put(tmp_path, hour_key("cpu", "daily", hour="00", stream_type="metrics"), [H10 + 5 * MIN], value=[0.5])
    got = local(tmp_path).read("metrics", "cpu", H10 + 5 * MIN, H10 + 6 * MIN)
    assert got.table.column("value").to_pylist() == [0.5]


def test_corrupt_parquet_raises_a_clear_error_naming_stream_and_key(tmp_path):
    key = hour_key("app", "broken")
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(OOReadError) as err:
        local(tmp_path).read("logs", "app", H10, H10 + MIN)
    assert "logs/app" in str(err.value) and key in str(err.value) and "Parquet" in str(err.value)


def test_configuration_errors_name_the_key(tmp_path):
    with pytest.raises(SourceConfigError, match="org"):
        open_source({"kind": "local", "path": str(tmp_path)})
    with pytest.raises(SourceConfigError, match="secret_key"):
        open_source({"kind": "s3", "bucket": "b", "org": "o", "secret_key": "x"})
    with pytest.raises(SourceConfigError, match="file_list"):
        open_source({"kind": "local", "path": str(tmp_path), "org": "o", "file_list": True})
    with pytest.raises(SourceConfigError, match="kind"):
        open_source({"kind": "ftp"})


@pytest.fixture(scope="module")
def compacted(tmp_path_factory) -> tuple[Path, str]:
    """Ten minutes of generated data whose hour was compacted: leftovers stay, file_list marks them."""
    root = tmp_path_factory.mktemp("compacted")
    db = root / "metadata.sqlite"
    generate(Storage.local(root), parse_time("2026-01-01T10:00:00Z"), parse_time("2026-01-01T10:10:00Z"),
             file_list_url=f"sqlite:///{db}", compaction=True)
    return root, f"sqlite:///{db}"


def test_file_list_avoids_double_counting_compaction_leftovers(compacted):
    root, url = compacted
    start, end = H10 + 2 * MIN, H10 + 3 * MIN
    listed = local(root, org="default").read("logs", "default", start, end)
    exact = open_source({"kind": "local", "path": str(root), "org": "default"},
                        secrets=SourceSecrets(file_list_url=url)).read("logs", "default", start, end)
    truth = pq.read_table(next((root / "_truth").glob("log_lines-*.parquet")))
    in_window = sum(start <= t < end for t in truth.column("_timestamp").to_pylist())
    assert exact.records == in_window == 5000
    assert listed.records == 2 * in_window  # what a plain listing gets during the ~2h leftover period
    assert len(exact.object_keys) == 1


def test_a_file_in_file_list_missing_from_the_bucket_is_a_clear_error(compacted, tmp_path):
    root, url = compacted
    copy = tmp_path / "meta.sqlite"
    copy.write_bytes(Path(url[len("sqlite:///"):]).read_bytes())
    with sqlite3.connect(copy) as lite:
        lite.execute("INSERT INTO file_list (org, stream, date, file, deleted, flattened, min_ts, max_ts, records,"
                     " original_size, compressed_size, index_size, updated_at) VALUES ('default',"
                     " 'default/logs/default', '2026/01/01/10', 'gone.parquet', false, false, ?, ?, 1, 1, 1, 0, 0)",
                     (H10, H10 + 10 * MIN))
    src = open_source({"kind": "local", "path": str(root), "org": "default"},
                      secrets=SourceSecrets(file_list_url=f"sqlite:///{copy}"))
    with pytest.raises(OOReadError) as err:
        src.read("logs", "default", H10, H10 + MIN)
    assert "gone.parquet" in str(err.value) and "not found" in str(err.value) and "logs/default" in str(err.value)


def test_the_listing_warning_is_given_once_per_bucket_not_once_per_window(tmp_path, caplog):
    put(tmp_path, hour_key("app", "a"), [H10 + 1, H10 + MIN + 1], body=["x", "y"])
    with caplog.at_level(logging.WARNING):
        for minute in range(2):  # each window opens its own source, as the job does
            local(tmp_path).read("logs", "app", H10 + minute * MIN, H10 + (minute + 1) * MIN)
    assert caplog.text.count("selecting files by listing hour prefixes") == 1


def test_only_the_requested_columns_are_read_and_absent_ones_are_no_error(tmp_path):
    put(tmp_path, hour_key("app", "wide"), [H10 + 1, H10 + 2], body=["a", "b"], service_name=["s", "t"],
        attr_unused=["x", "y"], nested_unused=[{"k": 1}, {"k": 2}])
    got = local(tmp_path).read("logs", "app", H10, H10 + MIN, columns={"body", "service_name", "not_in_file"})
    assert sorted(got.table.column_names) == ["_timestamp", "body", "service_name"]
    assert got.records == 2 and sorted(got.table.column("body").to_pylist()) == ["a", "b"]
    assert sorted(local(tmp_path).read("logs", "app", H10, H10 + MIN).table.column_names) == [
        "_timestamp", "attr_unused", "body", "nested_unused", "service_name"]
