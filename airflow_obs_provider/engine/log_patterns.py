"""``log_pattern_5m`` and ``log_pattern``: the window-level log mining the ``oo-agg`` job calls.

Inside the job's single window transaction:

1. :func:`prepare_logs` reads the log streams of the closed 5-minute buckets into one table
   (``_timestamp``, ``resource_urn``, ``message``, ``severity``, ``stream``) and the resources seen;
2. :func:`mine_log_window` takes the tenant's miner lock, loads the miner state, mines the
   window's messages, counts per (bucket, resource, fingerprint), applies the pattern cap and
   saves the state;
3. :func:`write_log_patterns` replaces the buckets' ``log_pattern_5m`` rows (delete + insert),
   upserts ``log_pattern`` and records aliases.

Invariants: every record whose ``_timestamp`` falls in a bucket is counted exactly once, so the
sum of ``count`` over a bucket and resource equals its number of log records (lines beyond
``max_patterns_per_resource`` are counted under the visible ``<other>`` pattern, never dropped);
``count_error`` counts records of level ERROR or worse (severity column as text or OTLP number,
else inferred from the message).

Determinism (the choice made here). A persistent miner learns: a template can generalise when
later windows bring new values, so "the same rows whatever the processing order" cannot mean
byte-identical fingerprints across different histories. What holds:

- within a window the result does not depend on the order of its records (distinct masked
  lines are mined in sorted order and every line gets the template it has *after* the whole
  window was mined);
- rerunning a window with the state it left behind gives the same rows (the miner has already
  seen every value of that window, so nothing generalises further);
- when a template does generalise, each fingerprint issued before is recorded in
  ``log_pattern_alias`` (old -> current, chains kept flat), so rows of any age join to the
  current pattern with one lookup: ``coalesce(a.new_fingerprint, r.fingerprint)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyarrow as pa
from psycopg2.extras import execute_values

from airflow_obs_provider.engine.aggregate.duck import connect_duckdb, quote_ident, stream_union_view
from airflow_obs_provider.engine.aggregate.resources import SeenResource, labels_from_row, merge_resources
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.masking import mask_text
from airflow_obs_provider.engine.patterns.config import MinerConfig
from airflow_obs_provider.engine.patterns.fingerprint import OTHER_TEMPLATE
from airflow_obs_provider.engine.patterns.severity import is_error, most_severe, severity_of
from airflow_obs_provider.engine.patterns.store import (
    PatternEntry,
    load_miner,
    lock_miner,
    record_aliases,
    save_miner,
    upsert_patterns,
)
from airflow_obs_provider.engine.window import Window, from_us, split_range

log = logging.getLogger(__name__)

BUCKET = timedelta(minutes=5)
BUCKET_US = 300_000_000
REQUIRED_COLUMNS = ("_timestamp", "resource_urn", "message")
MESSAGE_COLUMNS = ("body", "message", "msg", "log")  # OO log body, then common JSON keys
SAMPLE_MAX_CHARS = 2000


@dataclass
class LogPatternRows:
    """What one window produced, ready for :func:`write_log_patterns`."""

    # (bucket_us, resource_urn, fingerprint) -> [count, count_error, first stream name]
    counts: dict[tuple[int, str, str], list[Any]]
    patterns: list[PatternEntry]
    aliases: dict[str, str]
    records: int
    config_version: str
    overflow_lines: int = 0
    resources: dict[str, tuple[int, int]] = field(default_factory=dict)  # urn -> (first_us, last_us)


def prepare_logs(streams: Sequence[tuple[str, pa.Table]], from_us: int, to_us: int,
                 mapping: UrnMapping) -> tuple[pa.Table, list[SeenResource]]:
    """One table of the records in ``[from_us, to_us)`` of every log stream, with the resource URN
    (the tenant's URN mapping) and the message (``body``, else ``message``/``msg``/``log``)."""
    empty = pa.table({"_timestamp": pa.array([], pa.int64()), "resource_urn": pa.array([], pa.string()),
                      "message": pa.array([], pa.string()), "severity": pa.array([], pa.string()),
                      "stream": pa.array([], pa.string())})
    if not streams:
        return empty, []
    columns = {"_timestamp": "BIGINT", "severity": "VARCHAR", **{c: "VARCHAR" for c in MESSAGE_COLUMNS},
               **{c: "VARCHAR" for c in mapping.columns}}
    con = connect_duckdb()
    try:
        stream_union_view(con, "log_rows", [table for _, table in streams], columns)
        con.register("log_streams", pa.table({"stream_idx": pa.array(range(len(streams)), pa.int32()),
                                              "stream": pa.array([name for name, _ in streams], pa.string())}))
        message = "coalesce(" + ", ".join(quote_ident(c) for c in MESSAGE_COLUMNS) + ")"
        labels = ", ".join(quote_ident(c) for c in mapping.columns)
        # the URN expressions are built from quoted column names and escaped literals (urn.py)
        con.execute(
            f"CREATE TEMP TABLE log_sel AS SELECT _timestamp, {mapping.urn_sql()} AS resource_urn, "  # noqa: S608
            f"{mapping.type_sql()} AS resource_type, {message} AS message, severity, s.stream"
            f"{', ' + labels if labels else ''} "
            "FROM log_rows r JOIN log_streams s USING (stream_idx) "
            "WHERE _timestamp >= $from AND _timestamp < $to", {"from": from_us, "to": to_us})
        table = con.sql("SELECT _timestamp, resource_urn, message, severity, stream FROM log_sel "
                        "ORDER BY _timestamp, resource_urn, stream").to_arrow_table()
        label_sql = ", ".join(f"CASE WHEN count(DISTINCT {quote_ident(c)}) = 1 THEN max({quote_ident(c)}) END AS "
                              f"{quote_ident(c)}" for c in mapping.columns) or "NULL AS _none"
        res = con.sql(f"SELECT resource_urn AS urn, min(resource_type) AS type, min(_timestamp) AS first_us, "  # noqa: S608
                      f"max(_timestamp) AS last_us, {label_sql} FROM log_sel GROUP BY resource_urn "
                      "ORDER BY resource_urn").to_arrow_table()
    finally:
        con.close()
    resources = [SeenResource(r["urn"], r["type"], int(r["first_us"]), int(r["last_us"]),
                              labels_from_row(r, mapping.columns)) for r in res.to_pylist()]
    return table.cast(empty.schema), merge_resources(resources)


def _column(logs: pa.Table, name: str) -> list[Any]:
    return logs.column(name).to_pylist() if name in logs.column_names else [None] * logs.num_rows


def mine_log_window(cur: Any, tenant_id: int, logs: pa.Table, buckets: Sequence[Window],
                    tenant_overrides: Mapping[str, Any] | MinerConfig | None = None) -> LogPatternRows:
    """Mine one window's log records for ``tenant_id`` (call inside the window transaction).

    ``logs`` has ``_timestamp`` (int64 µs), ``resource_urn``, ``message`` (may be null) and
    optionally ``severity`` (text or a number) and ``stream``; records outside ``buckets`` are
    ignored. Takes the tenant's miner lock and saves the miner state before returning."""
    missing = [c for c in REQUIRED_COLUMNS if c not in logs.column_names]
    if missing:
        raise ValueError(f"log pattern input lacks column(s) {missing}; it has {logs.column_names}")
    config = MinerConfig.from_overrides(tenant_overrides)
    if not buckets:
        return LogPatternRows({}, [], {}, 0, config.version)
    spans = sorted((b.start_us, b.end_us) for b in buckets)
    lo, hi = spans[0][0], spans[-1][1]

    ts_all = _column(logs, "_timestamp")
    keep = [i for i, ts in enumerate(ts_all) if ts is not None and lo <= ts < hi
            and any(s <= ts < e for s, e in spans)]
    pick = (lambda col: [col[i] for i in keep]) if len(keep) != logs.num_rows else (lambda col: col)
    ts = pick(ts_all)
    urns = pick(_column(logs, "resource_urn"))
    messages = pick(_column(logs, "message"))
    severities = pick(_column(logs, "severity"))
    streams = pick(_column(logs, "stream"))
    if any(u is None or u == "" for u in urns):
        raise ValueError("log pattern input has records without a resource_urn")

    lock_miner(cur, tenant_id)
    miner = load_miner(cur, tenant_id, config)
    fps = miner.fingerprint_batch([m if isinstance(m, str) else ("" if m is None else str(m)) for m in messages])

    counts: dict[tuple[int, str, str], list[Any]] = {}
    per_fp: dict[str, list[Any]] = {}  # fp -> [severity, first_us, last_us, sample message, sample ts]
    resources: dict[str, tuple[int, int]] = {}
    sev_cache: dict[Any, str | None] = {}
    for t, urn, fp, msg, sev, stream in zip(ts, urns, fps, messages, severities, streams, strict=True):
        if sev is not None:
            level = sev_cache.get(sev) if sev in sev_cache else sev_cache.setdefault(sev, severity_of(sev, None))
            if level is None:
                level = severity_of(None, msg)
        else:
            level = severity_of(None, msg)
        bucket = t - t % BUCKET_US
        row = counts.get((bucket, urn, fp))
        if row is None:
            row = counts[(bucket, urn, fp)] = [0, 0, stream]
        row[0] += 1
        if is_error(level):
            row[1] += 1
        if stream is not None and (row[2] is None or stream < row[2]):
            row[2] = stream
        info = per_fp.get(fp)
        text = msg if isinstance(msg, str) else ""
        if info is None:
            per_fp[fp] = [level, t, t, text, t]
        else:
            info[0] = most_severe(info[0], level)
            info[1] = min(info[1], t)
            info[2] = max(info[2], t)
            if (t, text) < (info[4], info[3]):  # sample: the earliest record, ties by text
                info[3], info[4] = text, t
        first, last = resources.get(urn, (t, t))
        resources[urn] = (min(first, t), max(last, t))

    overflow = _apply_cap(counts, per_fp, miner.other, config.max_patterns_per_resource)
    patterns = [
        PatternEntry(fp, OTHER_TEMPLATE if fp == miner.other else miner.template(fp), info[0], info[1], info[2],
                     mask_text(info[3][:SAMPLE_MAX_CHARS]))
        for fp, info in sorted(per_fp.items())
    ]
    aliases = miner.pop_aliases()
    save_miner(cur, tenant_id, miner)
    return LogPatternRows(counts, patterns, aliases, len(ts), config.version, overflow, resources)


def _apply_cap(counts: dict[tuple[int, str, str], list[Any]], per_fp: dict[str, list[Any]], other: str,
               cap: int) -> int:
    """Keep each resource's ``cap`` most frequent patterns of the window; fold the rest into ``other``."""
    totals: dict[str, dict[str, int]] = {}
    for (_, urn, fp), row in counts.items():
        by_fp = totals.setdefault(urn, {})
        by_fp[fp] = by_fp.get(fp, 0) + row[0]
    folded = 0
    for urn, by_fp in totals.items():
        if len(by_fp) <= cap:
            continue
        ranked = sorted(by_fp, key=lambda fp: (-by_fp[fp], fp))
        keep = set(ranked[: cap - 1])  # one slot is the <other> pattern itself
        for key in [k for k in counts if k[1] == urn and k[2] not in keep and k[2] != other]:
            row = counts.pop(key)
            folded += row[0]
            target = counts.setdefault((key[0], urn, other), [0, 0, row[2]])
            target[0] += row[0]
            target[1] += row[1]
            if row[2] is not None and (target[2] is None or row[2] < target[2]):
                target[2] = row[2]
            src = per_fp[key[2]]
            info = per_fp.setdefault(other, [src[0], src[1], src[2], OTHER_TEMPLATE, src[1]])
            info[0] = most_severe(info[0], src[0])
            info[1], info[2] = min(info[1], src[1]), max(info[2], src[2])
    used = {k[2] for k in counts}
    for fp in [fp for fp in per_fp if fp not in used]:
        del per_fp[fp]
    return folded


def resolve_resources(cur: Any, tenant_id: int, result: LogPatternRows) -> dict[str, int]:
    """URN -> dim_resource id for the window's resources; URNs not there yet are added (type from
    the URN, first/last seen from the records) so no count is ever lost."""
    urns = sorted(result.resources)
    if not urns:
        return {}
    execute_values(cur, """
        INSERT INTO dim_resource (tenant_id, urn, type, first_seen, last_seen)
        SELECT v.tenant_id, v.urn, v.type, timestamptz 'epoch' + v.first_us * interval '1 microsecond',
               timestamptz 'epoch' + v.last_us * interval '1 microsecond'
        FROM (VALUES %s) AS v(tenant_id, urn, type, first_us, last_us)
        ON CONFLICT (tenant_id, urn) DO NOTHING
    """, [(tenant_id, urn, (urn.split(":") + ["", ""])[1] or "unknown", *result.resources[urn]) for urn in urns],
        template="(%s::bigint, %s, %s, %s::bigint, %s::bigint)")
    cur.execute("SELECT urn, id FROM dim_resource WHERE tenant_id = %s AND urn = ANY(%s)", (tenant_id, urns))
    return dict(cur.fetchall())


def write_log_patterns(cur: Any, tenant_id: int, result: LogPatternRows, buckets: Sequence[Window], *,
                       resource_ids: Mapping[str, int] | None = None,
                       locator_ids: Mapping[str, int] | None = None) -> int:
    """Replace the buckets' ``log_pattern_5m`` rows, upsert ``log_pattern``, record aliases.

    ``resource_ids`` (urn -> dim_resource id) is looked up when not given; ``locator_ids`` maps a
    stream name to its ``oo_locator`` id (rows point at the first stream, by name, that fed them)."""
    ids = dict(resource_ids or {})
    if any(urn not in ids for urn in result.resources):
        ids.update(resolve_resources(cur, tenant_id, result))
    locators = locator_ids or {}
    for b in buckets:
        cur.execute("DELETE FROM log_pattern_5m WHERE tenant_id = %s AND bucket >= %s AND bucket < %s",
                    (tenant_id, b.start, b.end))
    rows = [(from_us(bucket), tenant_id, ids[urn], fp, row[0], row[1], locators.get(row[2]))
            for (bucket, urn, fp), row in sorted(result.counts.items())]
    upsert_patterns(cur, tenant_id, result.patterns)
    if rows:
        execute_values(cur, """INSERT INTO log_pattern_5m (bucket, tenant_id, resource_id, fingerprint, count,
                                                          count_error, locator_id) VALUES %s""", rows)
    record_aliases(cur, tenant_id, result.aliases)
    return len(rows)


def write_window_patterns(tx: Any, logs: Sequence[tuple[str, pa.Table]], bucket_from_us: int, bucket_to_us: int,
                          *, mapping: UrnMapping, config: Mapping[str, Any] | None = None) -> int:
    """The ``oo-agg`` hook: logs of the closed buckets -> log_pattern / log_pattern_5m rows."""
    cfg = MinerConfig.from_overrides(config)  # a bad tenant override fails before any write
    buckets = list(split_range(from_us(bucket_from_us), from_us(bucket_to_us), BUCKET))
    table, resources = prepare_logs(logs, bucket_from_us, bucket_to_us, mapping)
    if resources:
        from airflow_obs_provider.engine.writer import upsert_resources

        upsert_resources(tx.cur, tx.tenant_id, resources)  # before the miner lock (see store.lock_miner)
    result = mine_log_window(tx.cur, tx.tenant_id, table, buckets, cfg)
    tx.cur.execute(
        "SELECT stream, id FROM oo_locator WHERE tenant_id = %s AND stream_type = 'logs' "
        "AND window_from = %s AND window_to = %s", (tx.tenant_id, from_us(bucket_from_us), from_us(bucket_to_us)))
    locator_ids = dict(tx.cur.fetchall())
    written = write_log_patterns(tx.cur, tx.tenant_id, result, buckets, locator_ids=locator_ids)
    tx.details["log_patterns"] = {
        "records": result.records, "rows": written, "patterns": len(result.patterns),
        "aliases": len(result.aliases), "overflow_lines": result.overflow_lines,
        "config_version": result.config_version,
    }
    return written
