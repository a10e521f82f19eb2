"""Postgres side of a window (design §2): COPY into staging, then replace the window's rows.

Everything here runs on the cursor of the ledger's window transaction
(:func:`ledger.run_window`), so a failure anywhere rolls the whole window back.

- Rows are COPYed (CSV) into temporary staging tables dropped at commit.
- ``dim_resource`` is upserted in URN order under a per-tenant transaction lock (concurrent
  windows never deadlock on it):
  ``first_seen`` = least, ``last_seen`` = greatest; labels merge key by key, the values of
  the most recently seen observation winning.
- Fact tables are replaced within a scope (this tenant's buckets of the window): rows whose
  keys vanished are deleted, the others upserted, and a row equal to the new one is not
  rewritten. A rerun therefore leaves identical rows, and keys that disappeared are gone.
- ``oo_locator`` rows are upserted by (tenant, stream type, stream, range); locators of a
  range the window rewrites whose stream was not read again are deleted.

Text is data: values travel through COPY, never through SQL text; NUL characters (which
Postgres text cannot hold) become U+FFFD.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg2 import sql

from airflow_obs_provider.engine.aggregate.locators import Locator
from airflow_obs_provider.engine.aggregate.resources import SeenResource, UrnRename

_PG_TYPES = {pa.int64(): "bigint", pa.int32(): "integer", pa.float64(): "double precision",
             pa.string(): "text", pa.bool_(): "boolean"}

# µs since the epoch -> timestamptz, exactly (no float seconds)
_TS = "(timestamptz 'epoch' + {} * interval '1 microsecond')"


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def stage(cur: Any, name: str, table: pa.Table) -> int:
    """Create temp table ``name`` (dropped at commit) shaped like ``table`` and COPY the rows in."""
    cols = []
    arrays = []
    for f in table.schema:
        if f.type not in _PG_TYPES:
            raise TypeError(f"staging {name}: column {f.name} has unsupported type {f.type}")
        cols.append(sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_PG_TYPES[f.type])))
        col = table.column(f.name)
        if f.type == pa.string():
            col = pc.replace_substring(col, "\x00", "\ufffd")
        arrays.append(col)
    # a second staging of the same name in one transaction (e.g. resources of logs) replaces the first
    cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(name)))
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        sql.Identifier(name), sql.SQL(", ").join(cols)))
    if table.num_rows == 0:
        return 0
    buf = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(arrays, schema=table.schema), buf)
    buf.seek(0)
    cur.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        sql.Identifier(name)).as_string(cur), buf)
    return table.num_rows


def _lock_resources(cur: Any, tenant_id: int) -> None:
    # One writer of this tenant's resources at a time until commit: concurrent windows (and a
    # window's second batch, e.g. log resources) would otherwise lock rows in crossing orders.
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"dim_resource|{tenant_id}",))


def adopt_renamed_resources(cur: Any, tenant_id: int, renames: Sequence[UrnRename]) -> int:
    """Give a resource that an earlier release named ``legacy_urn`` its current URN, keeping its id.

    Facts reference resources by id, so every row written under the old name (windows not
    rerun) follows, and a rerun of an old window finds the resource under its new name: one
    resource per peer, never an old and a new one side by side. Only done while the new URN is
    not yet a resource (once it is, both stay: merging two histories is not ours to guess), so
    it is idempotent. Returns the number of resources renamed.
    """
    if not renames:
        return 0
    _lock_resources(cur, tenant_id)
    renamed = 0
    for r in sorted(renames, key=lambda r: r.legacy_urn):
        cur.execute("""
            UPDATE dim_resource SET urn = %(urn)s, type = %(type)s
            WHERE tenant_id = %(tenant)s AND urn = %(legacy)s
              AND NOT EXISTS (SELECT 1 FROM dim_resource WHERE tenant_id = %(tenant)s AND urn = %(urn)s)
        """, {"tenant": tenant_id, "urn": _clean(r.urn), "type": r.type, "legacy": _clean(r.legacy_urn)})
        renamed += cur.rowcount
    return renamed


def upsert_resources(cur: Any, tenant_id: int, resources: Sequence[SeenResource]) -> int:
    """Insert or widen ``dim_resource`` rows (see the module doc); returns the number given."""
    if not resources:
        return 0
    _lock_resources(cur, tenant_id)
    table = pa.table({
        "urn": pa.array([_clean(r.urn) for r in resources], pa.string()),
        "type": pa.array([r.type for r in resources], pa.string()),
        "labels": pa.array([json.dumps(_clean(r.labels), sort_keys=True, ensure_ascii=False, default=str)
                            for r in resources], pa.string()),
        "first_us": pa.array([r.first_us for r in resources], pa.int64()),
        "last_us": pa.array([r.last_us for r in resources], pa.int64()),
    })
    stage(cur, "stage_resource", table)
    # The merged row is worked out once, against the row as it stands (no other writer of this
    # tenant's resources can change it: the lock above), so SET and WHERE both just read it.
    cur.execute(f"""
        INSERT INTO dim_resource AS d (tenant_id, urn, type, labels, first_seen, last_seen)
        SELECT %(tenant)s, s.urn, s.type,
               CASE WHEN o.id IS NULL THEN s.labels
                    WHEN s.last_seen >= coalesce(o.last_seen, s.last_seen) THEN o.labels || s.labels
                    ELSE s.labels || o.labels END,
               least(o.first_seen, s.first_seen), greatest(o.last_seen, s.last_seen)
        FROM (SELECT urn, type, labels::jsonb AS labels, {_TS.format('first_us')} AS first_seen,
                     {_TS.format('last_us')} AS last_seen FROM stage_resource) s
        LEFT JOIN dim_resource o ON o.tenant_id = %(tenant)s AND o.urn = s.urn
        ORDER BY s.urn
        ON CONFLICT (tenant_id, urn) DO UPDATE SET type = EXCLUDED.type, labels = EXCLUDED.labels,
          first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen
        WHERE (d.type, d.labels, d.first_seen, d.last_seen) IS DISTINCT FROM
              (EXCLUDED.type, EXCLUDED.labels, EXCLUDED.first_seen, EXCLUDED.last_seen)
    """, {"tenant": tenant_id})  # noqa: S608 - only our constant SQL fragments are formatted in
    return len(resources)


def replace_locators(cur: Any, tenant_id: int, locators: Sequence[Locator],
                     ranges: Iterable[tuple[str, int, int]]) -> None:
    """Upsert ``locators``; delete this tenant's locators of ``ranges`` (type, from, to) not in them."""
    table = pa.table({
        "stream_type": pa.array([loc.stream_type for loc in locators], pa.string()),
        "stream": pa.array([loc.stream for loc in locators], pa.string()),
        "from_us": pa.array([loc.from_us for loc in locators], pa.int64()),
        "to_us": pa.array([loc.to_us for loc in locators], pa.int64()),
        "sql_hint": pa.array([loc.sql_hint for loc in locators], pa.string()),
        "ui_url": pa.array([loc.ui_url for loc in locators], pa.string()),
        "object_keys": pa.array([json.dumps(list(loc.object_keys), ensure_ascii=False) for loc in locators],
                                pa.string()),
        "record_count": pa.array([loc.record_count for loc in locators], pa.int64()),
    })
    stage(cur, "stage_locator", table)
    scope = pa.table({
        "stream_type": pa.array([r[0] for r in ranges], pa.string()),
        "from_us": pa.array([r[1] for r in ranges], pa.int64()),
        "to_us": pa.array([r[2] for r in ranges], pa.int64()),
    })
    stage(cur, "stage_locator_scope", scope)
    cur.execute(f"""
        DELETE FROM oo_locator l USING stage_locator_scope s
        WHERE l.tenant_id = %(tenant)s AND l.stream_type = s.stream_type
          AND l.window_from = {_TS.format('s.from_us')} AND l.window_to = {_TS.format('s.to_us')}
          AND NOT EXISTS (SELECT 1 FROM stage_locator n WHERE n.stream_type = l.stream_type
                          AND n.stream = l.stream AND n.from_us = s.from_us AND n.to_us = s.to_us)
    """, {"tenant": tenant_id})  # noqa: S608
    cur.execute(f"""
        INSERT INTO oo_locator AS l (tenant_id, stream_type, stream, window_from, window_to, sql_hint, ui_url,
                                     object_keys, record_count)
        SELECT %(tenant)s, stream_type, stream, {_TS.format('from_us')}, {_TS.format('to_us')}, sql_hint, ui_url,
               object_keys::jsonb, record_count
        FROM stage_locator ORDER BY stream_type, stream
        ON CONFLICT (tenant_id, stream_type, stream, window_from, window_to) DO UPDATE SET
          sql_hint = EXCLUDED.sql_hint, ui_url = EXCLUDED.ui_url, object_keys = EXCLUDED.object_keys,
          record_count = EXCLUDED.record_count
        WHERE (l.sql_hint, l.ui_url, l.object_keys, l.record_count) IS DISTINCT FROM
              (EXCLUDED.sql_hint, EXCLUDED.ui_url, EXCLUDED.object_keys, EXCLUDED.record_count)
    """, {"tenant": tenant_id})  # noqa: S608


@dataclass(frozen=True)
class FactTable:
    """How staged aggregate rows (with URNs and a stream name) map onto a fact table."""

    name: str
    keys: tuple[str, ...]  # primary key without bucket and tenant_id
    values: tuple[str, ...]  # every other column except locator_id
    urn_columns: Mapping[str, str]  # staged URN column -> id column
    stream_type: str


METRIC_1M = FactTable("metric_1m", ("resource_id", "metric"),
                      ("kind", "avg", "max", "p95", "min", "count", "sum"), {"urn": "resource_id"}, "metrics")
SERVICE_CALL_5M = FactTable("service_call_5m", ("src_id", "dst_id"),
                            ("calls", "errors", "rps", "err_rate", "p50_ms", "p95_ms"),
                            {"src_urn": "src_id", "dst_urn": "dst_id"}, "traces")


def replace_facts(cur: Any, tenant_id: int, fact: FactTable, rows: pa.Table, scope_from_us: int,
                  scope_to_us: int, locator_range: tuple[int, int]) -> int:
    """Make this tenant's rows of ``fact`` with bucket in ``[scope_from, scope_to)`` equal ``rows``.

    ``rows`` has ``bucket_us``, the URN columns, the key/value columns and ``stream`` (the
    locator of (stream type, stream, ``locator_range``) is referenced). Returns rows written.
    """
    staged = f"stage_{fact.name}"
    stage(cur, staged, rows)
    ident = sql.Identifier
    id_cols = [sql.SQL("{}.id AS {}").format(ident(f"r_{urn}"), ident(id_col))
               for urn, id_col in fact.urn_columns.items()]
    joins = [sql.SQL("JOIN dim_resource {a} ON {a}.tenant_id = %(tenant)s AND {a}.urn = s.{u}").format(
        a=ident(f"r_{urn}"), u=ident(urn)) for urn in fact.urn_columns]
    plain = [c for c in fact.keys + fact.values if c not in fact.urn_columns.values()]
    resolved = f"resolved_{fact.name}"
    cur.execute(sql.SQL("""
        CREATE TEMP TABLE {resolved} ON COMMIT DROP AS
        SELECT {bucket} AS bucket, {ids}, {plain}, l.id AS locator_id
        FROM {staged} s {joins}
        LEFT JOIN oo_locator l ON l.tenant_id = %(tenant)s AND l.stream_type = %(stream_type)s
          AND l.stream = s.stream AND l.window_from = {lfrom} AND l.window_to = {lto}
    """).format(
        resolved=ident(resolved), bucket=sql.SQL(_TS.format("s.bucket_us")), ids=sql.SQL(", ").join(id_cols),
        plain=sql.SQL(", ").join(sql.SQL("s.{}").format(ident(c)) for c in plain), staged=ident(staged),
        joins=sql.SQL(" ").join(joins), lfrom=sql.SQL(_TS.format("%(lfrom)s")), lto=sql.SQL(_TS.format("%(lto)s")),
    ), {"tenant": tenant_id, "stream_type": fact.stream_type, "lfrom": locator_range[0], "lto": locator_range[1]})
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(resolved)))
    resolved_count = int(cur.fetchone()[0])
    if resolved_count != rows.num_rows:  # every URN was upserted above: anything else is a bug
        raise RuntimeError(f"{fact.name}: {rows.num_rows - resolved_count} staged rows name a resource "
                           "that is not in dim_resource (resources must be upserted first)")
    key_match = sql.SQL(" AND ").join(sql.SQL("n.{c} = t.{c}").format(c=ident(c)) for c in ("bucket",) + fact.keys)
    cur.execute(sql.SQL("""
        DELETE FROM {table} t
        WHERE t.tenant_id = %(tenant)s AND t.bucket >= {sfrom} AND t.bucket < {sto}
          AND NOT EXISTS (SELECT 1 FROM {resolved} n WHERE {key_match})
    """).format(table=ident(fact.name), sfrom=sql.SQL(_TS.format("%(sfrom)s")), sto=sql.SQL(_TS.format("%(sto)s")),
                resolved=ident(resolved), key_match=key_match),
        {"tenant": tenant_id, "sfrom": scope_from_us, "sto": scope_to_us})
    cols = ("bucket",) + fact.keys + fact.values + ("locator_id",)
    updates = fact.values + ("locator_id",)
    cur.execute(sql.SQL("""
        INSERT INTO {table} AS t (tenant_id, {cols})
        SELECT %(tenant)s, {cols} FROM {resolved} ORDER BY {keys}
        ON CONFLICT (bucket, tenant_id, {pk}) DO UPDATE SET {sets}
        WHERE ({old}) IS DISTINCT FROM ({new})
    """).format(
        table=ident(fact.name), cols=sql.SQL(", ").join(map(ident, cols)), resolved=ident(resolved),
        keys=sql.SQL(", ").join(map(ident, ("bucket",) + fact.keys)),
        pk=sql.SQL(", ").join(map(ident, fact.keys)),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=ident(c)) for c in updates),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in updates),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in updates),
    ), {"tenant": tenant_id})
    return resolved_count
