"""Late-data change detection on real Parquet files in a local bucket folder (and a SQLite file_list)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from airflow_obs_provider.devkit.gen import FileRecord, write_file_list
from airflow_obs_provider.engine.late_data import ChangeScanner, DigestBuilder, digest_span
from airflow_obs_provider.engine.oo.bucket import BucketSource
from airflow_obs_provider.engine.oo.layout import hour_prefix
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

HOUR = parse_time("2026-01-01T10:00:00Z")
H = to_us(HOUR)
MIN = 60_000_000
WINDOW = (H + 5 * MIN, H + 6 * MIN)  # own span; the read range adds a 2-minute lookback
READ = (WINDOW[0] - 2 * MIN, WINDOW[1])


class Folder:
    """A local bucket with one metrics stream ``cpu``; optionally a SQLite file_list beside it."""

    def __init__(self, root: Path, *, file_list: bool) -> None:
        self.storage = Storage.local(root)
        self.records: list[FileRecord] = []
        self.url = f"sqlite:///{root / 'meta.sqlite'}" if file_list else None

    def write(self, name: str, minutes: list[float], stream: str = "cpu") -> str:
        ts = [H + int(m * MIN) for m in minutes]
        table = pa.table({"_timestamp": pa.array(ts, pa.int64()), "value": pa.array([1.0] * len(ts))})
        table = table.replace_schema_metadata({"min_ts": str(min(ts)), "max_ts": str(max(ts)),
                                               "records": str(len(ts))})
        key = f"{hour_prefix('default', 'metrics', stream, HOUR)}{name}.parquet"
        size = self.storage.write_parquet(key, table, 1024)
        self.records.append(FileRecord(key, min(ts), max(ts), len(ts), table.nbytes, size))
        self._sync()
        return key

    def delete(self, key: str) -> None:
        self.storage.fs.delete_file(self.storage.path(key))
        for r in self.records:
            r.deleted = r.deleted or r.key == key
        self._sync()

    def _sync(self) -> None:
        if self.url:
            write_file_list(self.url, "default", self.records)

    def source(self) -> BucketSource:
        return BucketSource("local", "default", self.storage, file_list_url=self.url, threads=1)

    def digest(self) -> dict:
        """What a successful window reading ``READ`` of every metrics stream records."""
        src, builder = self.source(), DigestBuilder()
        builder.add_range("metrics", READ, WINDOW)
        for stream in src.streams("metrics"):
            builder.add_read("default", src.read("metrics", stream, *READ))
        return builder.as_json()

    def scanner(self) -> ChangeScanner:
        return ChangeScanner(self.source(), READ)


@pytest.fixture(params=["listing", "file_list"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Folder:
    f = Folder(tmp_path, file_list=request.param == "file_list")
    f.write("a", [3.5, 4.5, 5.5, 20.0])  # 3 rows in the read range, 1 in the window's own minute
    f.write("b", [30.0, 31.0])  # outside the range: considered, 0 rows
    return f


def test_the_digest_names_files_relative_to_the_stream_with_their_rows_in_range(folder: Folder) -> None:
    d = folder.digest()
    assert d["ranges"] == {"metrics": {"read": list(READ), "own": list(WINDOW)}}
    files = d["streams"]["metrics/cpu"]
    assert files["2026/01/01/10/a.parquet"] == 3
    assert sum(files.values()) == 3
    assert digest_span([d]) == READ


def test_nothing_new_is_unchanged_and_opens_no_file(folder: Folder) -> None:
    d = folder.digest()
    scanner = folder.scanner()
    check = scanner.check(d)
    assert check.verdict == "unchanged" and (check.old_records, check.new_records) == (3, 3)
    assert scanner.cost.files_read == 0


def test_a_late_file_grows_the_window_and_counts_its_own_minute_once(folder: Folder) -> None:
    d = folder.digest()
    folder.write("late", [4.0, 5.25, 5.75, 50.0])  # 3 in the read range, 2 in the own minute
    check = folder.scanner().check(d)
    assert check.verdict == "grown"
    assert (check.old_records, check.new_records, check.late_records) == (3, 6, 2)


def test_compaction_of_the_same_records_is_not_new_data(folder: Folder) -> None:
    d = folder.digest()
    folder.write("merged", [3.5, 4.5, 5.5, 20.0, 30.0, 31.0])
    for name in ("a", "b"):
        folder.delete(f"{hour_prefix('default', 'metrics', 'cpu', HOUR)}{name}.parquet")
    check = folder.scanner().check(d)
    assert check.verdict == "compacted" and check.new_records == check.old_records == 3
    # the refreshed digest names the merged file: checking it again opens nothing
    scanner = folder.scanner()
    assert scanner.check(check.refreshed).verdict == "unchanged" and scanner.cost.files_read == 0


def test_listing_leaves_out_a_merged_file_while_the_files_it_replaced_still_stand(tmp_path: Path) -> None:
    f = Folder(tmp_path, file_list=False)
    f.write("a", [3.5, 4.5, 5.5, 20.0])
    f.write("b", [30.0, 31.0])
    d = f.digest()
    f.write("merged", [3.5, 4.5, 5.5, 20.0, 30.0, 31.0])  # a and b stay in the bucket for now
    f.write("late", [4.0, 5.25])  # and two records arrive late
    scanner = f.scanner()
    check = scanner.check(d)
    assert check.verdict == "grown" and (check.old_records, check.new_records, check.late_records) == (3, 5, 1)
    assert scanner.cost.merged_pending == 1
    assert "2026/01/01/10/merged.parquet" not in check.refreshed["streams"]["metrics/cpu"]
    for name in ("a", "b"):
        f.delete(f"{hour_prefix('default', 'metrics', 'cpu', HOUR)}{name}.parquet")
    assert f.scanner().check(check.refreshed).verdict == "compacted"


def test_listing_counts_a_late_file_whose_bounds_differ_from_the_files_inside_it(tmp_path: Path) -> None:
    f = Folder(tmp_path, file_list=False)
    f.write("a", [3.5, 4.5])
    d = f.digest()
    f.write("late", [3.25, 3.75, 4.75])  # a lies inside it, but it is not a merge of a
    f.write("late2", [3.5, 4.0, 4.5])  # same bounds as a, another record count
    check = f.scanner().check(d)
    assert check.verdict == "grown" and check.new_records == 2 + 3 + 3


def test_a_lost_file_is_shrunk_even_when_another_stream_grew(folder: Folder) -> None:
    d = folder.digest()
    folder.delete(f"{hour_prefix('default', 'metrics', 'cpu', HOUR)}a.parquet")
    folder.write("x", [5.0], stream="mem")  # a stream the window never saw
    check = folder.scanner().check(d)
    assert check.verdict == "shrunk"
    assert [(s.stream, s.old_records, s.new_records) for s in check.shrunk] == [("cpu", 3, 0)]
    assert [(s.stream, s.new_records) for s in check.grown] == [("mem", 1)]


def test_a_new_file_shared_by_many_windows_is_read_once_per_pass(folder: Folder) -> None:
    d = folder.digest()
    folder.write("late", [4.0, 5.25, 20.0])  # reaches beyond the range: bounds alone cannot count it
    scanner = folder.scanner()
    assert scanner.check(d).verdict == "grown"
    assert scanner.check(d).verdict == "grown"
    assert scanner.cost.files_read == 1


def test_file_list_counts_a_file_inside_the_range_without_opening_it(tmp_path: Path) -> None:
    f = Folder(tmp_path, file_list=True)
    f.write("a", [4.0, 5.5])
    d = f.digest()
    f.write("late", [5.25, 5.5])  # inside the own minute, so inside the read range too
    scanner = f.scanner()
    check = scanner.check(d)
    assert check.verdict == "grown" and check.new_records == 4 and check.late_records == 2
    assert scanner.cost.files_read == 0 and scanner.cost.file_list_queries == 1 and scanner.cost.list_calls == 0
