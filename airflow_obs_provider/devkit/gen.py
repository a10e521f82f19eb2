"""``obs-etl gen-oo-data``: realistic, deterministic demo/test data in OpenObserve's bucket layout.

What it writes (see the OO contract page): traces of services calling services over HTTP and
gRPC (client "3" / server "2" spans in different services sharing trace ids and parent links),
databases, a queue (producer "4" / consumer "5"), external hosts, a cross-service parent/child
with missing kinds, some ERROR statuses; metrics (one stream per name: gauges, monotonic counters
with resets, cumulative histograms with string ``le`` up to ``"inf"`` plus ``_count``/``_sum``);
logs from varied templates and severities (text and numeric), some carrying secrets.

Each minute is generated from its own random stream ``(seed, minute)``, so a minute's data is the
same whatever range it is generated in. Files: per stream and hour, one zstd Parquet file per
(ingester, 10-minute chunk) with footer ``min_ts``/``max_ts``/``records``/``original_size``;
ingesters differ in schema (drift: extra columns, a column with another type).

Ground truth lands in ``_truth/`` beside ``files/``: ``manifest.json``, per-hour
``service_edges-*.parquet`` (caller start µs, src/dst URNs, error, latency), ``log_lines-*.parquet``
(true template id per line) and ``counter_resets-*.parquet``.

With ``file_list_url`` (``postgresql://...`` or ``sqlite:///path``) OO's ``file_list`` table is
written too; ``compaction=True`` then also writes each hour merged into one file and marks the
small files ``deleted`` while leaving them in the bucket, as OO's compactor does for ~2 h.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_obs_provider.devkit.gen_metrics import gen_metrics
from airflow_obs_provider.devkit.gen_signals import (
    CHUNK_US,
    LOG_TEMPLATES,
    PROFILES,
    ROW_GROUP,
    US_MIN,
    _stable_u64,
    gen_k8s_events,
    gen_logs,
    gen_traces,
)
from airflow_obs_provider.engine.oo.layout import file_list_stream, hour_bounds_us, hour_prefix
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import floor_time, from_us, parse_time, to_us

log = logging.getLogger(__name__)


def _drift(stream_type: str, ingester: int, t: pa.Table) -> pa.Table:
    """Each ingester writes its own schema version (what OO's readers must survive)."""
    if stream_type == "traces":
        if ingester == 1 and "http_status_code" in t.column_names:  # an older SDK sent it as a number
            i = t.column_names.index("http_status_code")
            t = t.set_column(i, "http_status_code", pc.cast(t.column(i), pa.int64()))
        if ingester == 0:
            t = t.drop_columns([c for c in ("service_service_version",) if c in t.column_names])
    elif stream_type == "metrics" and ingester == 1:
        t = t.set_column(t.column_names.index("flag"), "flag", pc.cast(t.column("flag"), pa.string()))
    elif stream_type == "logs":
        if ingester == 2 and "severity" in t.column_names:
            t = t.set_column(t.column_names.index("severity"), "severity", pc.cast(t.column("severity"), pa.int64()))
        if ingester == 1 and "k8s_pod_name" in t.column_names:
            t = t.append_column("k8s_container_name", pc.utf8_replace_slice(t.column("k8s_pod_name"), 0, 0, "c-"))
    # OO drops nulls, so a column without any value in a file is not in that file's schema
    return t.drop_columns([c for c in t.column_names if t.column(c).null_count == t.num_rows and t.num_rows])


def _file_id(seed: int, write_us: int, *parts: object) -> str:
    snowflake = ((write_us // 1000 - 1_577_836_800_000) << 22) | (_stable_u64(seed, *parts) & 0x3FFFFF)
    return f"{snowflake}{_stable_u64('suffix', seed, *parts) & 0xFFFFFF:06x}.parquet"


@dataclass
class FileRecord:
    key: str
    min_ts: int
    max_ts: int
    records: int
    original_size: int
    compressed_size: int
    deleted: bool = False


class BucketFileWriter:
    """Writes generated Parquet files in the bucket layout and records each one for OO's file_list."""


    def __init__(self, storage: Storage, org: str, seed: int) -> None:
        self.storage, self.org, self.seed = storage, org, seed
        self.files: list[FileRecord] = []

    def write_file(self, stream_type: str, stream: str, hour: datetime, partition: str, table: pa.Table,
                   write_us: int, *id_parts: object) -> FileRecord:
        table = table.sort_by("_timestamp")
        ts = table.column("_timestamp")
        lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
        meta = {"min_ts": str(lo), "max_ts": str(hi), "records": str(table.num_rows),
                "original_size": str(table.nbytes)}
        table = table.replace_schema_metadata(meta)
        name = _file_id(self.seed, write_us, stream_type, stream, hour.isoformat(), partition, *id_parts)
        key = f"{hour_prefix(self.org, stream_type, stream, hour)}{partition}{name}"
        size = self.storage.write_parquet(key, table, ROW_GROUP)
        rec = FileRecord(key, lo, hi, table.num_rows, table.nbytes, size)
        self.files.append(rec)
        return rec

    def write_hour(self, stream_type: str, stream: str, hour: datetime, table: pa.Table, *,
                   partition_by: str | None, compaction: bool) -> None:
        hour_start, _ = hour_bounds_us(hour)
        chunk = (table.column("_timestamp").to_numpy() - hour_start) // CHUNK_US
        ingester = table.column("__ingester").to_numpy()
        part_col = table.column(partition_by).to_numpy(zero_copy_only=False) if partition_by else None
        part_values = sorted(set(part_col.tolist())) if part_col is not None else [None]
        part_no = (np.searchsorted(np.array(part_values), part_col) if part_col is not None
                   else np.zeros(table.num_rows, np.int64))
        # one file per (ingester, 10-minute chunk[, partition]): sort once, then slice
        group = (ingester.astype(np.int64) * 1000 + chunk) * 1000 + part_no
        order = np.argsort(group, kind="stable")
        table, group = table.take(pa.array(order)), group[order]
        cuts = np.flatnonzero(np.diff(group)) + 1
        small: list[FileRecord] = []
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(group)], strict=True):
            g = int(group[lo])
            ingester_no, chunk_no, p = g // 1_000_000, (g // 1000) % 1000, g % 1000
            folder = f"{partition_by}={part_values[p]}/" if partition_by else ""
            body = _drift(stream_type, ingester_no, table.slice(lo, hi - lo).drop_columns(["__ingester"]))
            write_us = hour_start + (chunk_no + 1) * CHUNK_US + 30_000_000 + ingester_no * 1000
            small.append(self.write_file(stream_type, stream, hour, folder, body, write_us, ingester_no, chunk_no))
        if compaction:  # merged file, the small ones stay in the bucket but are deleted in file_list
            merged = table
            parts = [merged.filter(pc.equal(merged.column(partition_by), v)) for v in
                     sorted(set(merged.column(partition_by).to_pylist()))] if partition_by else [merged]
            for p in parts:
                folder = f"{partition_by}={p.column(partition_by)[0].as_py()}/" if partition_by else ""
                body = _drift(stream_type, 0, p.drop_columns(["__ingester"]))
                self.write_file(stream_type, stream, hour, folder, body, hour_start + 7_200_000_000, "compacted")
            for f in small:
                f.deleted = True


def write_file_list(url: str, org: str, files: Sequence[FileRecord]) -> None:
    """Write OO's ``file_list`` rows for the files written (table created when absent)."""
    import sqlite3

    from airflow_obs_provider.engine.db import connect
    from airflow_obs_provider.engine.oo.file_list import sqlite_path

    rows = []
    now_us = to_us(parse_time("2026-01-01T00:00:00Z"))  # fixed: the output stays deterministic
    for f in files:
        parts = f.key.split("/")
        stream = file_list_stream(parts[1], parts[2], parts[3])
        rows.append((org, stream, "/".join(parts[4:8]), "/".join(parts[8:]), f.deleted, False, f.min_ts, f.max_ts,
                     f.records, f.original_size, f.compressed_size, 0, now_us))
    ddl = ("CREATE TABLE IF NOT EXISTS file_list (org VARCHAR(100) NOT NULL, stream VARCHAR(256) NOT NULL,"
           " date VARCHAR(16) NOT NULL, file VARCHAR(496) NOT NULL, deleted BOOLEAN DEFAULT false NOT NULL,"
           " flattened BOOLEAN DEFAULT false NOT NULL, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL,"
           " records BIGINT NOT NULL, original_size BIGINT NOT NULL, compressed_size BIGINT NOT NULL,"
           " index_size BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (stream, date, file))")
    insert = ("INSERT INTO file_list (org, stream, date, file, deleted, flattened, min_ts, max_ts, records,"
              " original_size, compressed_size, index_size, updated_at) VALUES ({p}) ON CONFLICT (stream, date, file)"
              " DO UPDATE SET deleted = excluded.deleted, min_ts = excluded.min_ts, max_ts = excluded.max_ts,"
              " records = excluded.records")
    path = sqlite_path(url)
    if path is not None:
        with sqlite3.connect(path) as lite:
            lite.execute(ddl)
            lite.executemany(insert.format(p=", ".join(["?"] * 13)), rows)
        return
    conn = connect(url, application_name="obs-etl-gen")
    try:
        with conn.cursor() as cur:
            cur.execute(ddl)
            cur.executemany(insert.format(p=", ".join(["%s"] * 13)), rows)
        conn.commit()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# driver


@dataclass
class GenResult:
    files: list[FileRecord]
    rows: dict[str, int]
    seconds: float


def generate(storage: Storage, start: datetime, end: datetime, *, profile: str = "seed", seed: int = 1,
             org: str = "default", file_list_url: str | None = None, compaction: bool = False) -> GenResult:
    """Write ``[start, end)`` (whole minutes) of data and the truth sidecar into ``storage``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    if compaction and not file_list_url:
        raise ValueError("compaction leftovers only make sense with a file_list URL to mark them deleted")
    scale = PROFILES[profile]
    t0 = time.perf_counter()
    start_us, end_us = to_us(floor_time(start, timedelta(minutes=1))), to_us(floor_time(end, timedelta(minutes=1)))
    if end_us <= start_us:
        raise ValueError(f"--to must be at least one whole minute after --from ({start} .. {end})")
    writer = BucketFileWriter(storage, org, seed)
    pending: dict[tuple[str, str, int], list[pa.Table]] = defaultdict(list)
    rows: dict[str, int] = defaultdict(int)

    def add(stream_type: str, stream: str, t: pa.Table) -> None:
        t = t.filter(pc.and_(pc.greater_equal(t.column("_timestamp"), start_us), pc.less(t.column("_timestamp"), end_us)))
        hour_of = pc.divide(t.column("_timestamp"), 3_600_000_000)  # integer division: the UTC hour
        for h in sorted(set(hour_of.to_pylist())):
            pending[(stream_type, stream, h)].append(t.filter(pc.equal(hour_of, h)))
        rows[stream_type] += t.num_rows

    def flush(before_hour: int | None) -> None:
        for key in sorted(k for k in pending if before_hour is None or k[2] < before_hour):
            stream_type, stream, h = key
            table = pa.concat_tables(pending.pop(key), promote_options="permissive")
            writer.write_hour(stream_type, stream, from_us(h * 3_600_000_000), table,
                              partition_by="k8s_namespace_name" if stream == "k8s_events" else None,
                              compaction=compaction)

    truth_parts: dict[str, list[pa.Table]] = defaultdict(list)
    for minute_us in range(start_us, end_us, US_MIN):
        spans, edges = gen_traces(seed, minute_us, scale)
        add("traces", "default", spans)
        truth_parts["service_edges"].append(edges)
        logs, log_truth = gen_logs(seed, minute_us, scale)
        add("logs", "default", logs)
        truth_parts["log_lines"].append(log_truth)
        add("logs", "k8s_events", gen_k8s_events(seed, minute_us, scale))
        metrics, resets = gen_metrics(seed, minute_us, scale)
        for stream, t in metrics.items():
            add("metrics", stream, t)
        truth_parts["counter_resets"].append(resets)
        # spans run a few seconds past their minute: an hour is complete one minute after it ends
        flush(before_hour=(minute_us - US_MIN) // 3_600_000_000)
        if len(truth_parts["log_lines"]) >= 60:
            _write_truth(storage, truth_parts, start_us, end_us)
    flush(before_hour=None)
    _write_truth(storage, truth_parts, start_us, end_us)
    manifest = {
        "generator": "obs-etl gen-oo-data", "profile": profile, "seed": seed, "org": org,
        "from_us": start_us, "to_us": end_us, "rows": dict(rows), "files": len(writer.files),
        "compaction": compaction,
        "log_templates": [{"id": t.id, "services": list(t.services), "severities": list(t.severities),
                           "json_style": t.json_style} for t in LOG_TEMPLATES],
    }
    storage.write_bytes("_truth/manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    if file_list_url:
        write_file_list(file_list_url, org, writer.files)
    return GenResult(writer.files, dict(rows), time.perf_counter() - t0)


def _write_truth(storage: Storage, parts: dict[str, list[pa.Table]], start_us: int, end_us: int) -> None:
    """Write accumulated truth tables, one file per kind and first-minute of the batch."""
    for name in list(parts):
        tables = [t for t in parts.pop(name) if t.num_rows]
        if not tables:
            continue
        t = pa.concat_tables(tables)
        key_col = {"service_edges": "caller_start_us", "log_lines": "_timestamp",
                   "counter_resets": "first_ts_after_reset"}[name]
        t = t.filter(pc.and_(pc.greater_equal(t.column(key_col), start_us), pc.less(t.column(key_col), end_us)))
        if not t.num_rows:
            continue
        first = from_us(pc.min(t.column(key_col)).as_py()).strftime("%Y%m%dT%H%M%S")
        storage.write_parquet(f"_truth/{name}-{first}.parquet", t.sort_by(key_col), 1 << 20)


def cli_generate(args: argparse.Namespace) -> int:
    secrets = SourceSecrets.from_env()
    storage = Storage.from_uri(args.out, secrets)
    result = generate(storage, parse_time(args.start), parse_time(args.end), profile=args.profile, seed=args.seed,
                      org=args.org, file_list_url=args.file_list_url,
                      compaction=args.compaction)
    total = sum(result.rows.values())
    print(f"wrote {len(result.files)} files, {total} records ({', '.join(f'{k} {v}' for k, v in sorted(result.rows.items()))})"
          f" to {storage.display} in {result.seconds:.2f}s")
    return 0
