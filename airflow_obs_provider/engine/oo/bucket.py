"""The bucket reader: OO's Parquet files in a local folder or on S3, one window of one stream.

Files come from OO's ``file_list`` (authoritative) or from listing the hour prefixes; each
is pruned by its footer ``min_ts``/``max_ts`` and by row-group ``_timestamp`` statistics,
so only overlapping row groups are read. Rows are then cut to ``[start_us, end_us)``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_obs_provider.engine.oo.file_list import FileListError, select_files
from airflow_obs_provider.engine.oo.layout import LayoutError, hour_prefix, hours_covering, parse_key
from airflow_obs_provider.engine.oo.reader_types import (
    OOReadError,
    SourceConfigError,
    StreamRead,
    check_stream_type,
)
from airflow_obs_provider.engine.oo.schema import (
    SchemaError,
    check_timestamp_column,
    normalise,
    timestamp_unit_problem,
)
from airflow_obs_provider.engine.oo.storage import Storage, s3_filesystem
from airflow_obs_provider.engine.oo.ui_link import oo_ui_url
from airflow_obs_provider.engine.secrets import SourceSecrets, scrub

log = logging.getLogger(__name__)
# Read column chunks through a small buffer rather than whole into memory: OO files are small and
# read once, and whole-chunk buffers left ~10 MB of freed heap behind per stream type.
_READ_BUFFER_BYTES = 64 * 1024
# Files read side by side. pyarrow already decodes each file on every core, so a local folder
# gains nothing from more (and each reader thread keeps a malloc arena: ~10 MB more peak RSS on a
# seed window); S3 requests wait on the network, so they overlap.
_DEFAULT_THREADS = {"local": 1, "s3": 8}
# bucket locations already warned about listing, once per process rather than once per window
_WARNED_LISTING: set[str] = set()

_KNOWN_KEYS = {
    "local": {"kind", "path", "org", "file_list", "ui_base_url", "threads"},
    "s3": {"kind", "bucket", "prefix", "org", "endpoint_url", "region", "file_list", "ui_base_url", "threads"},
}


def listing_hours(stream_type: str, start_us: int, end_us: int) -> list[datetime]:
    """The hour prefixes a listing reader looks under for ``[start_us, end_us)``."""
    hours = list(hours_covering(start_us, end_us))
    if stream_type == "metrics":  # OO < 0.20 wrote metrics daily, all under hour 00
        hours += [h.replace(hour=0) for h in hours if h.replace(hour=0) not in hours]
    return sorted(set(hours))


@dataclass(frozen=True)
class _Candidate:
    key: str
    min_ts: int | None = None  # known from file_list; otherwise read from the footer
    max_ts: int | None = None


def footer_ts(pf: pq.ParquetFile) -> tuple[int | None, int | None]:
    meta = pf.metadata.metadata or {}
    try:
        return int(meta[b"min_ts"]), int(meta[b"max_ts"])
    except (KeyError, ValueError):
        return None, None


def _row_groups(pf: pq.ParquetFile, start_us: int, end_us: int) -> list[int]:
    """Row groups whose ``_timestamp`` statistics meet the window (all when there are none).

    Statistics in another unit than microseconds are an error (SchemaError), not a reason to prune:
    milliseconds would otherwise look like 1970 and every file would be skipped without a word."""
    leaves = pf.metadata.schema.names
    col = leaves.index("_timestamp") if "_timestamp" in leaves else None
    keep = []
    for i in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(i).column(col).statistics if col is not None else None
        if stats is not None and stats.has_min_max:
            problem = timestamp_unit_problem(int(stats.min), int(stats.max))
            if problem:
                raise SchemaError(problem)
            if int(stats.max) < start_us or int(stats.min) >= end_us:
                continue
        keep.append(i)
    return keep


class BucketSource:
    """Reader over the bucket layout (``kind`` is ``local`` or ``s3``)."""

    def __init__(self, kind: str, org: str, storage: Storage, *, file_list_url: str | None = None,
                 ui_base_url: str | None = None, scrub: tuple[str, ...] = (), threads: int = 8) -> None:
        self.kind = kind
        self.org = org
        self.storage = storage
        self.file_list_url = file_list_url
        self.ui_base_url = ui_base_url
        self._scrub = scrub
        self._threads = max(1, threads)
        self._root_checked = False

    # -- errors ------------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        return scrub(text, self._scrub)

    def _error(self, stream_type: str, stream: str, key: str, exc: BaseException) -> OOReadError:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            cause = f"object not found ({cause})"
        elif isinstance(exc, pa.ArrowInvalid):
            cause = f"not a readable Parquet file ({cause})"
        return OOReadError(self._clean(
            f"{self.kind} source {self.storage.display}: stream {stream_type}/{stream}: "
            f"cannot read {key}: {cause}"))

    # -- selection -----------------------------------------------------------------------------
    def check_root(self, stream_type: str = "*") -> None:
        """The root must hold ``files/{org}/``: a wrong path, prefix or org is an error, never an empty
        window (which would replace a window's aggregates with nothing). Checked once per source."""
        if self._root_checked:
            return
        try:
            orgs = self.storage.list_dirs("files")
        except OSError as exc:
            raise self._error(stream_type, "*", "files/", exc) from None
        if not orgs:
            raise OOReadError(self._clean(
                f"{self.kind} source {self.storage.display} holds no files/ folder: it is not the root of "
                "OpenObserve's bucket layout (check source.path / bucket / prefix)"))
        if self.org not in orgs:
            raise OOReadError(self._clean(
                f"{self.kind} source {self.storage.display}: organisation {self.org!r} (source.org) does not exist "
                f"under files/ (found: {', '.join(orgs[:10])}{', ...' if len(orgs) > 10 else ''})"))
        self._root_checked = True

    def streams(self, stream_type: str) -> list[str]:
        check_stream_type(stream_type)
        self.check_root(stream_type)
        prefix = f"files/{self.org}/{stream_type}"
        try:
            return self.storage.list_dirs(prefix)
        except OSError as exc:
            raise self._error(stream_type, "*", prefix + "/", exc) from None

    def _listed(self, stream_type: str, stream: str, start_us: int, end_us: int) -> list[_Candidate]:
        if self.storage.display not in _WARNED_LISTING:
            log.warning("%s: selecting files by listing hour prefixes (no OO file_list configured): files that "
                        "compaction replaced stay ~2h in the bucket and may be counted twice; set a file_list "
                        "URL to avoid it", self.storage.display)
            _WARNED_LISTING.add(self.storage.display)
        return [_Candidate(key) for hour in listing_hours(stream_type, start_us, end_us)
                for key in self.hour_files(stream_type, stream, hour)]

    def hour_files(self, stream_type: str, stream: str, hour: datetime) -> list[str]:
        """Keys of the Parquet data files under one hour prefix of a stream (one LIST request)."""
        prefix = hour_prefix(self.org, stream_type, stream, hour)
        try:
            listed = self.storage.list_files(prefix)
        except OSError as exc:
            raise self._error(stream_type, stream, prefix, exc) from None
        found = []
        for f in listed:
            try:
                parsed = parse_key(f.key)
            except LayoutError as exc:
                log.warning("skipping %s: %s", f.key, exc)
                continue
            if not parsed.is_parquet:
                log.warning("skipping non-Parquet file %s (only Parquet is read)", f.key)
                continue
            found.append(f.key)
        return found

    def _from_file_list(self, stream_type: str, stream: str, start_us: int, end_us: int) -> list[_Candidate]:
        assert self.file_list_url
        try:
            entries = select_files(self.file_list_url, self.org, stream_type, stream, start_us, end_us)
        except FileListError as exc:
            raise OOReadError(self._clean(f"stream {stream_type}/{stream}: {exc}")) from None
        out = []
        for e in entries:
            if not e.key.endswith(".parquet"):
                log.warning("skipping non-Parquet file %s (only Parquet is read)", e.key)
                continue
            out.append(_Candidate(e.key, e.min_ts, e.max_ts))
        return out

    # -- reading -------------------------------------------------------------------------------
    def _read_one(self, stream_type: str, stream: str, c: _Candidate, start_us: int, end_us: int,
                  columns: Collection[str] | None) -> pa.Table | None:
        """The file's rows inside the window, or None when pruned without reading data."""
        if c.min_ts is not None and c.max_ts is not None and (c.max_ts < start_us or c.min_ts >= end_us):
            return None
        try:
            with self.storage.open(c.key) as fh:
                pf = pq.ParquetFile(fh, buffer_size=_READ_BUFFER_BYTES)
                if "_timestamp" not in pf.schema_arrow.names:
                    raise SchemaError("has no _timestamp column")
                ts_type = pf.schema_arrow.field("_timestamp").type
                if not pa.types.is_integer(ts_type):
                    raise SchemaError(f"_timestamp has type {ts_type}, not Int64 microseconds")
                lo, hi = footer_ts(pf)
                if lo is not None and hi is not None:
                    problem = timestamp_unit_problem(lo, hi)
                    if problem:
                        raise SchemaError(f"footer min_ts/max_ts: {problem}")
                    if hi < start_us or lo >= end_us:
                        return None
                groups = _row_groups(pf, start_us, end_us)
                if not groups:
                    return None
                names = pf.schema_arrow.names
                table = pf.read_row_groups(groups, columns=None if columns is None else [
                    n for n in names if n == "_timestamp" or n in columns])
                check_timestamp_column(table)  # files written without statistics are checked here
        except SchemaError as exc:
            raise OOReadError(self._clean(f"{self.kind} source {self.storage.display}: stream {stream_type}/{stream}: "
                                          f"{c.key}: {exc}")) from None
        except (OSError, pa.ArrowException) as exc:
            raise self._error(stream_type, stream, c.key, exc) from None
        ts = pc.cast(table.column("_timestamp"), pa.int64())
        return table.filter(pc.and_(pc.greater_equal(ts, start_us), pc.less(ts, end_us)))

    def read(self, stream_type: str, stream: str, start_us: int, end_us: int,
             columns: Collection[str] | None = None) -> StreamRead:
        check_stream_type(stream_type)
        if end_us <= start_us:
            raise ValueError(f"empty window [{start_us}, {end_us}) for {stream_type}/{stream}")
        select = self._from_file_list if self.file_list_url else self._listed
        candidates = sorted(select(stream_type, stream, start_us, end_us), key=lambda c: c.key)
        if self._threads > 1 and len(candidates) > 1:
            with ThreadPoolExecutor(min(self._threads, len(candidates))) as pool:
                results = list(pool.map(lambda c: self._read_one(stream_type, stream, c, start_us, end_us, columns),
                                        candidates))
        else:
            results = [self._read_one(stream_type, stream, c, start_us, end_us, columns) for c in candidates]
        read = [(c.key, t) for c, t in zip(candidates, results, strict=True) if t is not None]
        try:
            table = normalise([t for _, t in read], stream_type)
        except SchemaError as exc:
            raise OOReadError(f"{self.storage.display}: stream {stream_type}/{stream}: {exc}") from None
        log.debug("%s/%s [%d, %d): %d of %d files read, %d rows", stream_type, stream, start_us, end_us,
                  len(read), len(candidates), table.num_rows)
        files = tuple((c.key, 0 if t is None else t.num_rows) for c, t in zip(candidates, results, strict=True))
        return StreamRead(stream_type, stream, table, tuple(k for k, _ in read), table.num_rows, files)

    def ui_url(self, stream_type: str, stream: str, start_us: int, end_us: int, sql: str) -> str | None:
        return oo_ui_url(self.ui_base_url, self.org, stream_type, stream, start_us, end_us, sql)

    def __repr__(self) -> str:
        return f"BucketSource({self.kind}, {self.storage.display}, org={self.org!r})"


def _require(source: Mapping[str, Any], key: str) -> str:
    value = source.get(key)
    if not value or not isinstance(value, str):
        raise SourceConfigError(f"source.{key} is required for kind {source.get('kind')!r}")
    return value


def open_bucket_source(source: Mapping[str, Any], *, base_dir: Path | None,
                       secrets: SourceSecrets) -> BucketSource:
    kind = str(source.get("kind"))
    unknown = set(source) - _KNOWN_KEYS[kind]
    if unknown:
        raise SourceConfigError(f"source keys {sorted(unknown)} are not known for kind {kind!r} "
                                f"(known: {sorted(_KNOWN_KEYS[kind])}); credentials belong in connections/env")
    org = _require(source, "org")
    use_file_list = source.get("file_list")
    if use_file_list is True and not secrets.file_list_url:
        raise SourceConfigError("source.file_list is true but no file_list URL (OO's metadata DB) is configured: "
                                "set OO_FILE_LIST_URL or the operator's file-list connection")
    file_list_url = secrets.file_list_url if use_file_list is not False else None
    if kind == "local":
        path = Path(_require(source, "path")).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_dir():
            raise SourceConfigError(f"source.path {path} is not a folder")
        storage = Storage.local(path)
        if not (path / "files").is_dir():  # cheap on a local folder: fail before any window
            raise SourceConfigError(f"source.path {storage.display} holds no files/ folder: it is not the root of "
                                    "OpenObserve's bucket layout")
        if not (path / "files" / org).is_dir():
            found = sorted(p.name for p in (path / "files").iterdir() if p.is_dir())
            raise SourceConfigError(f"source.org {org!r} does not exist in {storage.display}/files "
                                    f"(found: {', '.join(found[:10]) or 'nothing'})")
    else:
        fs = s3_filesystem(secrets, source.get("endpoint_url"), source.get("region"))
        storage = Storage.s3(_require(source, "bucket"), str(source.get("prefix") or ""), fs)
    return BucketSource(kind, org, storage, file_list_url=file_list_url, ui_base_url=source.get("ui_base_url"),
                        scrub=secrets.secret_values(), threads=int(source.get("threads", _DEFAULT_THREADS[kind])))

