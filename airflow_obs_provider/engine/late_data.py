"""Late-arriving records: did a window's source gain records after the window succeeded?

OpenObserve accepts records up to ``ZO_INGEST_ALLOWED_UPTO`` (5 h by default) after their
timestamp, so an hour prefix keeps gaining files long after ``oo-agg`` read it. Each successful
window therefore records a *digest* of what it read (the ledger's ``source_digest``):

    {"v": 1,
     "ranges": {"metrics": {"read": [from_us, to_us], "own": [from_us, to_us]}, "traces": ..., "logs": ...},
     "streams": {"metrics/cpu_usage": {"2026/01/01/10/7f3a.parquet": 1234, ...}, ...}}

``read`` is the ``_timestamp`` range read for that stream type (metrics include the counter
lookback, traces the pairing slack), ``own`` the part that belongs to this window alone (its
minute, or the 5-minute buckets it closes), and every stream maps each file the reader
considered (key relative to the stream's root) to its rows inside ``read``.

:class:`ChangeScanner` compares a digest with the bucket today, reading no data already
counted: files in the digest keep their recorded counts, and only files the digest does not
know are looked at (``file_list``'s ``records`` when the file lies inside the range, else the
file's ``_timestamp`` column, read once per pass). A stream's count is

    sum(recorded rows of digest files still live) + sum(rows in range of new files)

so compaction (OpenObserve rewriting the same records into a merged file and deleting the old
ones) leaves it unchanged, while a late file raises it. A listing also shows the replaced files
for ~2 h after compaction (``file_list`` marks them deleted at once): a new file whose footer
records equal those of known files still standing in its folder and inside its time range is such
a merged file, and is left out until its inputs are gone (:meth:`ChangeScanner._merges_standing`). A window is *grown* when some stream
gained records and none lost any; *compacted* when only the set of files changed; *shrunk*
when a stream lost records (retention or deletion: the no-loss guard's business, never rerun
from here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from airflow_obs_provider.engine.oo.bucket import BucketSource, footer_ts, listing_hours
from airflow_obs_provider.engine.oo.file_list import FileEntry, FileListError, select_org_files
from airflow_obs_provider.engine.oo.layout import file_list_stream, stream_root
from airflow_obs_provider.engine.oo.source import STREAM_TYPES, OOReadError, StreamRead

DIGEST_VERSION = 1


# --------------------------------------------------------------------------- the digest a success records

@dataclass
class DigestBuilder:
    """Collects what one window read; :meth:`as_json` is stored in ``etl_job_run.source_digest``."""

    ranges: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    streams: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_range(self, stream_type: str, read: tuple[int, int], own: tuple[int, int]) -> None:
        self.ranges[stream_type] = {"read": [int(read[0]), int(read[1])], "own": [int(own[0]), int(own[1])]}

    def add_read(self, org: str, read: StreamRead) -> None:
        root = stream_root(org, read.stream_type, read.stream) + "/"
        self.streams[f"{read.stream_type}/{read.stream}"] = {
            key[len(root):] if key.startswith(root) else key: int(rows) for key, rows in read.files}

    def as_json(self) -> dict[str, Any]:
        return {"v": DIGEST_VERSION, "ranges": self.ranges, "streams": self.streams}


# --------------------------------------------------------------------------- comparing with the bucket today

@dataclass(frozen=True)
class StreamChange:
    stream_type: str
    stream: str
    old_records: int
    new_records: int
    late_records: int  # rows of new files inside the window's own span (each late record counted once)


@dataclass
class WindowCheck:
    """One window's digest against the bucket today."""

    streams: list[StreamChange]
    files_changed: bool  # the set of live files differs from the digest's (new data or compaction)
    refreshed: dict[str, Any]  # the digest as it would be recorded now (for compaction bookkeeping)

    @property
    def old_records(self) -> int:
        return sum(s.old_records for s in self.streams)

    @property
    def new_records(self) -> int:
        return sum(s.new_records for s in self.streams)

    @property
    def late_records(self) -> int:
        return sum(s.late_records for s in self.streams if s.new_records > s.old_records)

    @property
    def shrunk(self) -> list[StreamChange]:
        return [s for s in self.streams if s.new_records < s.old_records]

    @property
    def grown(self) -> list[StreamChange]:
        return [s for s in self.streams if s.new_records > s.old_records]

    @property
    def verdict(self) -> str:
        """``grown`` (rerun), ``shrunk`` (left alone), ``compacted`` (same records, other files) or ``unchanged``."""
        if self.shrunk:
            return "shrunk"
        if self.grown:
            return "grown"
        return "compacted" if self.files_changed else "unchanged"


@dataclass(frozen=True)
class _Live:
    """A live file of a stream: bounds and records known from ``file_list``, unknown from a listing."""

    key: str
    min_ts: int | None = None
    max_ts: int | None = None
    records: int | None = None


@dataclass
class ScanCost:
    list_calls: int = 0  # LIST requests (hour prefixes and stream folders)
    file_list_queries: int = 0
    files_read: int = 0  # new files whose _timestamp column was read
    footers_read: int = 0  # listing only: footers read to recognise compaction outputs
    merged_pending: int = 0  # listing only: merged files left out while the files they replace stand


class ChangeScanner:
    """Compares digests with one bucket source; caches listings and reads for one pass.

    With ``file_list`` configured, one query fetches every live file of the organisation over the
    pass's time range; without it, each hour prefix of each stream is listed once per pass.
    """

    def __init__(self, source: BucketSource, span_us: tuple[int, int]) -> None:
        self.source = source
        self.span_us = span_us
        self.cost = ScanCost()
        self._streams: dict[str, list[str]] = {}
        self._hours: dict[tuple[str, str, datetime], list[str]] = {}
        self._file_list: dict[str, list[FileEntry]] | None = None
        self._timestamps: dict[str, np.ndarray] = {}
        self._footers: dict[str, tuple[int | None, int | None, int]] = {}

    @property
    def mode(self) -> str:
        return "file_list" if self.source.file_list_url else "listing"

    # -- what exists today -----------------------------------------------------------------------
    def streams(self, stream_type: str) -> list[str]:
        if stream_type not in self._streams:
            if self.source.file_list_url:
                prefix = f"{self.source.org}/{stream_type}/"
                self._streams[stream_type] = sorted({name[len(prefix):] for name in self._org_files()
                                                     if name.startswith(prefix)})
            else:
                self.cost.list_calls += 1
                self._streams[stream_type] = self.source.streams(stream_type)
        return self._streams[stream_type]

    def _org_files(self) -> dict[str, list[FileEntry]]:
        if self._file_list is None:
            assert self.source.file_list_url
            self.cost.file_list_queries += 1
            try:
                self._file_list = select_org_files(self.source.file_list_url, self.source.org, *self.span_us)
            except FileListError as exc:
                raise OOReadError(str(exc)) from None
        return self._file_list

    def live_files(self, stream_type: str, stream: str, start_us: int, end_us: int) -> list[_Live]:
        """The files a read of ``[start_us, end_us)`` would consider today (the reader's own selection)."""
        if self.source.file_list_url:
            name = file_list_stream(self.source.org, stream_type, stream)
            return [_Live(e.key, e.min_ts, e.max_ts, e.records) for e in self._org_files().get(name, [])
                    if e.max_ts >= start_us and e.min_ts <= end_us]
        out = []
        for hour in listing_hours(stream_type, start_us, end_us):
            cache_key = (stream_type, stream, hour)
            if cache_key not in self._hours:
                self.cost.list_calls += 1
                self._hours[cache_key] = self.source.hour_files(stream_type, stream, hour)
            out += [_Live(k) for k in self._hours[cache_key]]
        return out

    def rows_in(self, f: _Live, start_us: int, end_us: int) -> int:
        """Rows of ``f`` with ``start_us <= _timestamp < end_us``; reads the file only when its bounds cannot tell."""
        if f.min_ts is not None and f.max_ts is not None and f.records is not None:
            if f.max_ts < start_us or f.min_ts >= end_us:
                return 0
            if start_us <= f.min_ts and f.max_ts < end_us:
                return f.records
        ts = self._timestamps.get(f.key)
        if ts is None:
            ts = self._read_timestamps(f.key)
            self._timestamps[f.key] = ts
        return int(np.searchsorted(ts, end_us, "left") - np.searchsorted(ts, start_us, "left"))

    def _read_timestamps(self, key: str) -> np.ndarray:
        self.cost.files_read += 1
        try:
            with self.source.storage.open(key) as fh:
                table = pq.ParquetFile(fh).read(columns=["_timestamp"])
        except (OSError, ValueError) as exc:
            raise OOReadError(f"{self.source.storage.display}: cannot read {key}: {exc}") from None
        return np.sort(table.column("_timestamp").to_numpy().astype(np.int64))

    def _footer(self, key: str) -> tuple[int | None, int | None, int]:
        """(min_ts, max_ts, records) from a file's footer, read once per pass."""
        if key not in self._footers:
            self.cost.footers_read += 1
            try:
                with self.source.storage.open(key) as fh:
                    pf = pq.ParquetFile(fh)
                    self._footers[key] = (*footer_ts(pf), pf.metadata.num_rows)
            except (OSError, ValueError) as exc:
                raise OOReadError(f"{self.source.storage.display}: cannot read {key}: {exc}") from None
        return self._footers[key]

    def _merges_standing(self, new_key: str, standing: list[str]) -> bool:
        """Listing only: is ``new_key`` a compaction output whose input files still stand in the bucket?

        OpenObserve merges files of one folder (hour and partition) into one holding exactly their
        records: its footer's ``min_ts``/``max_ts`` are those of its earliest and latest input, and its
        ``records`` the sum of some of the known files lying inside that range in the same folder. A
        late file matches all three only by coincidence (exact microsecond bounds and a record sum).
        """
        lo, hi, records = self._footer(new_key)
        if lo is None or hi is None:
            return False
        folder = new_key.rsplit("/", 1)[0]
        inside: list[tuple[int, int, int]] = []
        for key in standing:
            if key.rsplit("/", 1)[0] != folder:
                continue
            k_lo, k_hi, k_records = self._footer(key)
            if k_lo is not None and k_hi is not None and lo <= k_lo and k_hi <= hi:
                inside.append((k_lo, k_hi, k_records))
        if not inside or min(k[0] for k in inside) != lo or max(k[1] for k in inside) != hi:
            return False
        reachable = 1  # bit n set: some subset of the inside files holds n records
        for _, _, n in inside:
            reachable |= reachable << n
        return bool(reachable >> records & 1)

    # -- one window ------------------------------------------------------------------------------
    def check(self, digest: Mapping[str, Any]) -> WindowCheck:
        ranges: Mapping[str, Mapping[str, list[int]]] = digest.get("ranges", {})
        recorded: Mapping[str, Mapping[str, int]] = digest.get("streams", {})
        changes: list[StreamChange] = []
        refreshed: dict[str, dict[str, int]] = {}
        files_changed = False
        for stream_type in STREAM_TYPES:
            if stream_type not in ranges:
                continue
            read_from, read_to = ranges[stream_type]["read"]
            own_from, own_to = ranges[stream_type]["own"]
            known = {name.split("/", 1)[1] for name in recorded if name.split("/", 1)[0] == stream_type}
            for stream in sorted(known | set(self.streams(stream_type))):
                old = recorded.get(f"{stream_type}/{stream}", {})
                root = stream_root(self.source.org, stream_type, stream) + "/"
                now: dict[str, int] = {}
                late = 0
                live = self.live_files(stream_type, stream, read_from, read_to)
                standing = [f.key for f in live if f.key[len(root):] in old]
                for f in live:
                    rel = f.key[len(root):] if f.key.startswith(root) else f.key
                    if rel in old:
                        now[rel] = old[rel]
                        continue
                    rows = self.rows_in(f, read_from, read_to)
                    if rows and not self.source.file_list_url and standing \
                            and self._merges_standing(f.key, standing):
                        # counted through its inputs until they are deleted; not recorded, so it is
                        # looked at again then (and counted, its inputs gone: compaction)
                        self.cost.merged_pending += 1
                        continue
                    now[rel] = rows
                    if rows:
                        late += self.rows_in(f, own_from, own_to)
                files_changed |= set(now) != set(old)
                if old or now:
                    refreshed[f"{stream_type}/{stream}"] = now
                if old or any(now.values()):
                    changes.append(StreamChange(stream_type, stream, sum(old.values()), sum(now.values()), late))
        return WindowCheck(changes, files_changed, {"v": DIGEST_VERSION, "ranges": dict(ranges),
                                                    "streams": refreshed})


def digest_span(digests: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
    """The ``_timestamp`` range every digest's reads lie in (the one ``file_list`` query of a pass)."""
    lo = hi = None
    for d in digests:
        for r in d.get("ranges", {}).values():
            lo = r["read"][0] if lo is None else min(lo, r["read"][0])
            hi = r["read"][1] if hi is None else max(hi, r["read"][1])
    return None if lo is None or hi is None else (int(lo), int(hi))
