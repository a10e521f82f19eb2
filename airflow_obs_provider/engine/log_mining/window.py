"""``log_pattern_5m`` and ``log_pattern``: the window-level log mining the ``oo-agg`` job calls.

Inside the job's single window transaction, :func:`write_window_patterns`:

1. selects the records of the closed 5-minute buckets from every log stream (``_timestamp``,
   resource URN, message, ``severity``, ``stream``) and upserts the resources seen;
2. takes the tenant's miner lock, loads the miner state, mines the window's messages, counts per
   (bucket, resource, fingerprint), applies the pattern cap and saves the state;
3. replaces the buckets' ``log_pattern_5m`` rows (delete + insert), upserts ``log_pattern`` and
   records aliases (:func:`write_log_patterns`).

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
import pyarrow as pa
from psycopg2.extras import execute_values

from airflow_obs_provider.engine.aggregate.calls import BUCKET_US
from airflow_obs_provider.engine.aggregate.duck import connect_duckdb, quote_ident, stream_union_view
from airflow_obs_provider.engine.aggregate.resources import (
    SeenResource,
    labels_from_row,
    merge_resources,
    single_value_labels_sql,
)
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.log_mining.fingerprint import OTHER_TEMPLATE
from airflow_obs_provider.engine.log_mining.severity import (
    ERROR_RANK,
    LEVELS,
    RANK,
    infer_severity,
    most_severe,
    parse_severity,
)
from airflow_obs_provider.engine.log_mining.store import (
    PatternEntry,
    load_miner,
    lock_miner,
    record_aliases,
    save_miner,
    upsert_patterns,
)
from airflow_obs_provider.engine.masking import mask_text, needle_rules_sql
from airflow_obs_provider.engine.window import Window, from_us, split_range
from airflow_obs_provider.engine.writer import upsert_resources

log = logging.getLogger(__name__)

BUCKET = timedelta(microseconds=BUCKET_US)  # the 5-minute bucket log_pattern_5m shares with service_call_5m
MESSAGE_COLUMNS = ("body", "message", "msg", "log")  # OO log body, then common JSON keys
SAMPLE_MAX_CHARS = 2000
# what the miner reads from ``log_sel``: stands in for it when the window has no log stream
_EMPTY_LOG_SEL = pa.schema([("_timestamp", pa.int64()), ("resource_urn", pa.string()), ("message", pa.string()),
                            ("severity", pa.string()), ("stream", pa.string())])


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


def input_columns(mapping: UrnMapping) -> dict[str, str]:
    """The log columns the miner reads (name -> DuckDB type); the reader reads no others."""
    return {"_timestamp": "BIGINT", "severity": "VARCHAR", **{c: "VARCHAR" for c in MESSAGE_COLUMNS},
            **{c: "VARCHAR" for c in mapping.columns}}


def _select_logs(con: duckdb.DuckDBPyConnection, streams: Sequence[tuple[str, pa.Table]], start_us: int,
                 end_us: int, mapping: UrnMapping) -> list[SeenResource]:
    """Create view ``log_sel`` over the records in ``[start_us, end_us)`` of every log stream, with the
    resource URN (the tenant's URN mapping) and the message (``body``, else ``message``/``msg``/``log``);
    return the resources seen. A view, not a table: the Arrow data is scanned in place, never copied."""
    stream_union_view(con, "log_rows", [table for _, table in streams], input_columns(mapping))
    con.register("log_streams", pa.table({"stream_idx": pa.array(range(len(streams)), pa.int32()),
                                          "stream": pa.array([name for name, _ in streams], pa.string())}))
    message = "coalesce(" + ", ".join(quote_ident(c) for c in MESSAGE_COLUMNS) + ")"
    labels = ", ".join(quote_ident(c) for c in mapping.columns)
    # the URN expressions are built from quoted column names and escaped literals (urn.py)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW log_sel AS SELECT _timestamp, {mapping.urn_sql()} AS resource_urn, "  # noqa: S608
        f"{mapping.type_sql()} AS resource_type, {message} AS message, severity, s.stream"
        f"{', ' + labels if labels else ''} "
        "FROM log_rows r JOIN log_streams s USING (stream_idx) "
        f"WHERE _timestamp >= {int(start_us)} AND _timestamp < {int(end_us)}")
    label_sql = single_value_labels_sql(mapping.columns, quote_ident)
    res = con.sql(f"SELECT resource_urn AS urn, min(resource_type) AS type, min(_timestamp) AS first_us, "  # noqa: S608
                  f"max(_timestamp) AS last_us, {label_sql} FROM log_sel GROUP BY resource_urn "
                  "ORDER BY resource_urn").to_arrow_table()
    resources = [SeenResource(r["urn"], r["type"], int(r["first_us"]), int(r["last_us"]),
                              labels_from_row(r, mapping.columns)) for r in res.to_pylist()]
    return merge_resources(resources)


def _collapse(con: duckdb.DuckDBPyConnection, source: str, buckets: Sequence[Window]) -> None:
    """Table ``shapes``: the records inside ``buckets`` collapsed per (bucket, resource, severity,
    stream, digit-normalised message), with their count and first/last time.

    This is the miner's own first deduplication (:func:`masks.digit_key`) done vectorised, so the
    Python work grows with distinct shapes, not records. ``[0-9]`` is a subset of Python's ``\\d``:
    the miner normalises the non-ASCII forms again and gets exactly the key of the original lines;
    a line's inferred severity does not depend on its digits either (the level patterns never read
    them). No sample message here: a full text per shape costs memory, and only one per pattern is
    kept (:func:`_samples`)."""
    # source is our own view/table name; the bucket bounds are integers
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE shapes AS
        SELECT _timestamp - ((_timestamp % {BUCKET_US}) + {BUCKET_US}) % {BUCKET_US} AS bucket,
               urn, severity, stream, {_form_sql('text')} AS form,
               count(*) AS n, min(_timestamp) AS first_us, max(_timestamp) AS last_us
        FROM ({_records_sql(source, buckets)})
        GROUP BY ALL""")  # noqa: S608


def _form_sql(text: str) -> str:
    """The miner's digit_key in DuckDB (ASCII digits only, see :func:`_collapse`) of column ``text``."""
    return f"regexp_replace({text}, '[0-9]+', '0', 'g')"


def _records_sql(source: str, buckets: Sequence[Window]) -> str:
    """The records of ``source`` inside ``buckets``, typed (``_timestamp``, ``urn``, ``text``, ...)."""
    spans = sorted((b.start_us, b.end_us) for b in buckets)
    in_buckets = " OR ".join(f"(_timestamp >= {int(s)} AND _timestamp < {int(e)})" for s, e in spans)
    return (f"SELECT CAST(_timestamp AS BIGINT) AS _timestamp, CAST(resource_urn AS VARCHAR) AS urn, "  # noqa: S608
            f"coalesce(CAST(message AS VARCHAR), '') AS text, severity, CAST(stream AS VARCHAR) AS stream "
            f"FROM {source} WHERE _timestamp IS NOT NULL AND ({in_buckets})")


def _register_levels(con: duckdb.DuckDBPyConnection) -> None:
    """View ``leveled``: ``shapes`` with each shape's fingerprint and level rank (from the severity
    column, else the message; NULL when neither says)."""
    severities = con.sql("SELECT DISTINCT severity FROM shapes").to_arrow_table().column(0)
    con.register("level_of_severity", pa.table({
        "severity": severities,
        "rank": pa.array([RANK.get(parse_severity(s) or "") for s in severities.to_pylist()], pa.int8())}))
    unread = con.sql("SELECT DISTINCT s.form FROM shapes s LEFT JOIN level_of_severity v "
                     "ON s.severity IS NOT DISTINCT FROM v.severity WHERE v.rank IS NULL").to_arrow_table().column(0)
    con.register("level_of_form", pa.table({
        "form": unread, "rank": pa.array([RANK.get(infer_severity(f) or "") for f in unread.to_pylist()], pa.int8())}))
    con.execute("""
        CREATE OR REPLACE TEMP VIEW leveled AS
        SELECT s.*, f.fp, coalesce(v.rank, m.rank) AS rank
        FROM shapes s JOIN fingerprint_of_form f USING (form)
        LEFT JOIN level_of_severity v ON s.severity IS NOT DISTINCT FROM v.severity
        LEFT JOIN level_of_form m ON v.rank IS NULL AND m.form = s.form""")


def _samples(con: duckdb.DuckDBPyConnection, source: str, buckets: Sequence[Window],
             first_us: Mapping[str, int]) -> dict[str, str]:
    """fp -> its earliest message (ties: the smallest text). Only the records at each pattern's first
    timestamp are read, and their forms computed again: a handful of rows, not a text per shape."""
    con.register("first_of_fp", pa.table({"fp": pa.array(list(first_us), pa.string()),
                                          "first_us": pa.array(list(first_us.values()), pa.int64())}))
    # source is our own view/table name; the rest are constants of this module. MATERIALIZED: else
    # DuckDB computes the join's form expression for every record before matching timestamps.
    return dict(con.execute(f"""
        WITH r AS MATERIALIZED (SELECT _timestamp, text FROM ({_records_sql(source, buckets)})
                                WHERE _timestamp IN (SELECT first_us FROM first_of_fp))
        SELECT f.fp, min(r.text)
        FROM r JOIN first_of_fp f ON r._timestamp = f.first_us
        JOIN fingerprint_of_form m ON m.form = {_form_sql("r.text")} AND m.fp = f.fp
        GROUP BY f.fp""").fetchall())  # noqa: S608


def _mine(cur: Any, tenant_id: int, con: duckdb.DuckDBPyConnection, source: str, buckets: Sequence[Window],
          config: MinerConfig) -> LogPatternRows:
    """Collapse, fingerprint the distinct forms with the tenant's miner, and count (see the module doc)."""
    _collapse(con, source, buckets)
    if con.execute("SELECT count(*) FROM shapes WHERE urn IS NULL OR urn = ''").fetchall()[0][0]:
        raise ValueError("log pattern input has records without a resource_urn")

    lock_miner(cur, tenant_id)
    miner = load_miner(cur, tenant_id, config)
    # the secret masks' needle checks are done here, vectorised, for every ASCII form at once
    distinct = con.sql(needle_rules_sql("(SELECT DISTINCT form FROM shapes)", "form")).to_arrow_table()
    forms = distinct.column("form")
    fps = miner.fingerprint_batch(forms.to_pylist(), digit_normalised=True,
                                  secret_rules=distinct.column("rules").to_pylist())
    con.register("fingerprint_of_form", pa.table({"form": forms, "fp": pa.array(fps, pa.string())}))
    del distinct, forms, fps
    _register_levels(con)

    # one pass over the (bucket, resource, pattern) groups gives the counts, each pattern's
    # worst level and time range, and each resource's time range
    counts: dict[tuple[int, str, str], list[Any]] = {}
    per_fp: dict[str, list[Any]] = {}  # fp -> [severity, first_us, last_us, sample message]
    resources: dict[str, tuple[int, int]] = {}
    for bucket, urn, fp, n, n_error, stream, rank, first, last in con.execute(
            "SELECT bucket, urn, fp, CAST(sum(n) AS BIGINT), "
            "CAST(coalesce(sum(n) FILTER (WHERE rank >= $error), 0) AS BIGINT), min(stream), max(rank), "
            "min(first_us), max(last_us) FROM leveled GROUP BY bucket, urn, fp",
            {"error": ERROR_RANK}).fetchall():
        counts[(bucket, urn, fp)] = [n, n_error, stream]
        level = LEVELS[rank - 1] if rank else None
        info = per_fp.get(fp)
        if info is None:
            per_fp[fp] = [level, first, last, None]
        else:
            info[0] = most_severe(info[0], level)
            info[1], info[2] = min(info[1], first), max(info[2], last)
        seen = resources.get(urn)
        resources[urn] = (first, last) if seen is None else (min(seen[0], first), max(seen[1], last))
    for fp, sample in _samples(con, source, buckets, {fp: info[1] for fp, info in per_fp.items()}).items():
        per_fp[fp][3] = sample
    records = sum(row[0] for row in counts.values())

    overflow = _apply_cap(counts, per_fp, miner.other, config.max_patterns_per_resource)
    patterns = [
        PatternEntry(fp, OTHER_TEMPLATE if fp == miner.other else miner.template(fp), info[0], info[1], info[2],
                     mask_text(info[3][:SAMPLE_MAX_CHARS]))
        for fp, info in sorted(per_fp.items())
    ]
    aliases = miner.pop_aliases()
    save_miner(cur, tenant_id, miner)
    return LogPatternRows(counts, patterns, aliases, records, config.version, overflow, resources)


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
            info = per_fp.setdefault(other, [src[0], src[1], src[2], OTHER_TEMPLATE])
            info[0] = most_severe(info[0], src[0])
            info[1], info[2] = min(info[1], src[1]), max(info[2], src[2])
    used = {k[2] for k in counts}
    for fp in [fp for fp in per_fp if fp not in used]:
        del per_fp[fp]
    return folded


def _resource_ids(cur: Any, tenant_id: int, urns: Iterable[str]) -> dict[str, int]:
    """URN -> dim_resource id (every URN of the window was upserted before mining)."""
    wanted = sorted(urns)
    if not wanted:
        return {}
    cur.execute("SELECT urn, id FROM dim_resource WHERE tenant_id = %s AND urn = ANY(%s)", (tenant_id, wanted))
    return dict(cur.fetchall())


def write_log_patterns(cur: Any, tenant_id: int, result: LogPatternRows, buckets: Sequence[Window], *,
                       locator_ids: Mapping[str, int] | None = None) -> int:
    """Replace the buckets' ``log_pattern_5m`` rows, upsert ``log_pattern``, record aliases.

    ``locator_ids`` maps a stream name to its ``oo_locator`` id (rows point at the first stream, by
    name, that fed them)."""
    ids = _resource_ids(cur, tenant_id, result.resources)
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
                          *, mapping: UrnMapping, config: Mapping[str, Any] | None = None,
                          con: duckdb.DuckDBPyConnection | None = None) -> int:
    """The ``oo-agg`` hook: logs of the closed buckets -> log_pattern / log_pattern_5m rows (``con``: the
    job's DuckDB connection, else a new one)."""
    cfg = MinerConfig.from_overrides(config)  # a bad tenant override fails before any write
    buckets = list(split_range(from_us(bucket_from_us), from_us(bucket_to_us), BUCKET))
    own = con is None
    con = con or connect_duckdb()
    try:
        if logs:
            resources = _select_logs(con, logs, bucket_from_us, bucket_to_us, mapping)
            upsert_resources(tx.cur, tx.tenant_id, resources)  # before the miner lock (see store.lock_miner)
        else:
            con.register("log_sel", _EMPTY_LOG_SEL.empty_table())
        result = _mine(tx.cur, tx.tenant_id, con, "log_sel", buckets, cfg)
    finally:
        if own:
            con.close()
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
