"""``service_call_5m``: the service-call edges of one 5-minute bucket (design §5). The product's contract:

Spans are read for ``[bucket_start - slack, bucket_end + slack)`` (``slack`` default 2 minutes,
so partner spans just across the bucket edges are found) but an edge is kept only when its
CALLER span started in ``[bucket_start, bucket_end)``: the caller's start time (event time)
decides the bucket. The job's ``delay`` must therefore exceed ``slack`` plus OpenObserve's
WAL horizon (~10 minutes), or partners written late are missed.

A parent/child pair is two spans of one trace where the child's ``reference_parent_span_id``
is the parent's ``span_id``. Kinds are OTLP numbers as strings (``"2"`` server, ``"3"``
client, ``"4"`` producer, ``"5"`` consumer; missing or unknown counts as ``"0"``).

1. client -> server: a client span and its server child in another service give the edge
   caller service -> callee service.
2. producer -> consumer: a producer span and its consumer child in another service give
   producer service -> consumer service. The queue itself is a node too: a producer span
   whose peer is a queue (rule 4's naming) also gives producer service -> ``urn:queue:...``,
   whether or not a consumer is instrumented.
3. parent -> child across services when either kind is missing, unspecified or internal
   (``0``/``1``): parent service -> child service. Every span has one parent, so a pair is
   counted once, whichever rule matched.
   Other cross-service combinations (e.g. server -> server) are not calls and are ignored.
4. A client or producer span with no server/consumer child (in any service) and no child in
   another service calls an uninstrumented peer, a virtual node named from the span's own
   attributes by the precedence table of :mod:`peers` (OpenTelemetry's current attribute
   names before their predecessors; ``urn:db:``, ``urn:queue:``, ``urn:svc:`` or
   ``urn:ext:``). A span naming nothing gives no edge; a peer equal to the caller is dropped.

A span whose service (``mapping.service_column``) is empty or missing belongs to the tenant's
fallback resource (``urn_mapping.fallback``, default ``urn:svc:unknown_service``), as metric
points and log records do: its calls are kept, on either side. Two spans are in "another
service" when their resource URNs differ.

Per edge: latency = the caller's ``duration`` (µs -> ms) for client/producer callers, else
the child's duration; error = either side has ``span_status`` ``ERROR``.
Per (bucket, src, dst): ``calls``, ``errors``, ``rps = calls / 300``, ``err_rate = errors / calls``,
``p50_ms``/``p95_ms`` = continuous percentiles of the latencies (PostgreSQL ``percentile_cont``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from airflow_obs_provider.engine.aggregate.duck import (
    MASK_URN_SQL,
    connect_duckdb,
    quote_ident,
    stream_union_view,
)
from airflow_obs_provider.engine.aggregate.peers import PEER_COLUMNS, spans_with_peers_sql
from airflow_obs_provider.engine.aggregate.resources import SeenResource, UrnRename
from airflow_obs_provider.engine.aggregate.urn import UrnMapping

BUCKET_US = 300_000_000
DEFAULT_SLACK_US = 120_000_000

CALL_ROW_SCHEMA = pa.schema([
    ("bucket_us", pa.int64()), ("src_urn", pa.string()), ("dst_urn", pa.string()),
    ("calls", pa.int64()), ("errors", pa.int64()), ("rps", pa.float64()), ("err_rate", pa.float64()),
    ("p50_ms", pa.float64()), ("p95_ms", pa.float64()), ("stream", pa.string()),
])


_KIND_SQL = """CASE lower(trim(coalesce(span_kind, '')))
      WHEN '1' THEN 1 WHEN 'internal' THEN 1 WHEN 'span_kind_internal' THEN 1
      WHEN '2' THEN 2 WHEN 'server' THEN 2 WHEN 'span_kind_server' THEN 2
      WHEN '3' THEN 3 WHEN 'client' THEN 3 WHEN 'span_kind_client' THEN 3
      WHEN '4' THEN 4 WHEN 'producer' THEN 4 WHEN 'span_kind_producer' THEN 4
      WHEN '5' THEN 5 WHEN 'consumer' THEN 5 WHEN 'span_kind_consumer' THEN 5
      ELSE 0 END"""

_EDGES_SQL = """
WITH s AS (
  SELECT stream_idx, _timestamp AS ts, trace_id, span_id, nullif(reference_parent_span_id, '') AS parent_id,
         nullif({svc}, '') AS svc,
         {mask}(CASE WHEN nullif({svc}, '') IS NULL THEN $fallback ELSE 'urn:svc:' || {svc} END) AS urn,
         {kind} AS kind, upper(coalesce(span_status, '')) = 'ERROR' AS err,
         duration / 1000.0 AS ms, {mask}(peer_urn) AS peer_urn, legacy_peer_urn
  FROM ({spans}) WHERE nullif(trace_id, '') IS NOT NULL AND nullif(span_id, '') IS NOT NULL
),
callers AS (SELECT * FROM s WHERE ts >= $bstart AND ts < $bend),
pairs AS (
  SELECT p.stream_idx, p.ts, p.trace_id, p.span_id, p.urn AS src, c.urn AS dst, p.svc AS src_svc,
         c.svc AS dst_svc, p.kind AS pk, c.kind AS ck, p.err OR c.err AS err,
         CASE WHEN p.kind IN (3, 4) THEN p.ms ELSE c.ms END AS ms
  FROM callers p JOIN s c ON c.trace_id = p.trace_id AND c.parent_id = p.span_id
),
counted AS (
  SELECT stream_idx, ts, src, dst, err, ms, src_svc, dst_svc, NULL::VARCHAR AS legacy_dst
  FROM pairs
  WHERE src <> dst AND ((pk = 3 AND ck = 2) OR (pk = 4 AND ck = 5) OR pk IN (0, 1) OR ck IN (0, 1))
),
partnered AS (
  SELECT DISTINCT trace_id, span_id FROM pairs WHERE ck IN (2, 5) OR dst <> src
),
virtual AS (
  SELECT p.stream_idx, p.ts, p.urn AS src, p.peer_urn AS dst, p.err, p.ms, p.svc AS src_svc,
         NULL::VARCHAR AS dst_svc, p.legacy_peer_urn AS legacy_dst
  FROM callers p LEFT JOIN partnered q ON q.trace_id = p.trace_id AND q.span_id = p.span_id
  WHERE p.kind IN (3, 4) AND p.peer_urn IS NOT NULL AND p.peer_urn <> p.urn
    AND (q.span_id IS NULL OR (p.kind = 4 AND p.peer_urn LIKE 'urn:queue:%'))
)
SELECT * FROM counted UNION ALL SELECT * FROM virtual
"""

_ROWS_SQL = """
SELECT ts - (ts % $bucket) AS bucket_us, src AS src_urn, dst AS dst_urn, count(*) AS calls,
       count(*) FILTER (WHERE err) AS errors, count(*) / 300.0 AS rps,
       count(*) FILTER (WHERE err) / count(*)::DOUBLE AS err_rate,
       quantile_cont(ms, 0.5) AS p50_ms, quantile_cont(ms, 0.95) AS p95_ms, min(stream_idx) AS stream_idx
FROM edges GROUP BY ALL ORDER BY bucket_us, src_urn, dst_urn
"""

# A virtual node that earlier releases named differently (``legacy_peer_urn``, see :mod:`peers`)
# may take over its old resource, so that its history follows it, when that is unambiguous:
# the old name is a virtual kind (a ``urn:svc:`` may be a real service), this computation no
# longer uses the old name itself, and the old name maps to exactly one new one.
_RENAMES_SQL = """
SELECT legacy_dst AS legacy_urn, min(dst) AS urn FROM edges
WHERE legacy_dst IS NOT NULL AND legacy_dst <> dst
  AND split_part(legacy_dst, ':', 2) IN ('ext', 'db', 'queue')
  AND legacy_dst NOT IN (SELECT src FROM edges UNION ALL SELECT dst FROM edges)
GROUP BY legacy_dst HAVING count(DISTINCT dst) = 1 ORDER BY legacy_urn
"""

_RESOURCES_SQL = """
SELECT urn, min(ts) AS first_us, max(ts) AS last_us, max(svc) AS svc FROM (
  SELECT src AS urn, ts, src_svc AS svc FROM edges UNION ALL SELECT dst AS urn, ts, dst_svc AS svc FROM edges
) GROUP BY urn ORDER BY urn
"""


@dataclass(frozen=True)
class CallResult:
    rows: pa.Table  # CALL_ROW_SCHEMA
    resources: list[SeenResource]
    renames: list[UrnRename] = field(default_factory=list)


def read_range(bucket_start_us: int, bucket_end_us: int, slack_us: int = DEFAULT_SLACK_US) -> tuple[int, int]:
    """The ``_timestamp`` range read to compute the buckets in ``[bucket_start, bucket_end)``."""
    return bucket_start_us - slack_us, bucket_end_us + slack_us


def closed_buckets(window_start_us: int, window_end_us: int) -> tuple[int, int] | None:
    """The 5-minute buckets a window closes: those whose end lies in ``(start, end]``.

    Only the window that closes a bucket computes it, from the whole bucket read afresh,
    so rerunning an earlier minute never overwrites a complete bucket with a partial one.
    """
    first_end = window_start_us - window_start_us % BUCKET_US + BUCKET_US
    last_end = window_end_us - window_end_us % BUCKET_US
    if last_end < first_end:
        return None
    return first_end - BUCKET_US, last_end


def _resource_type(urn: str) -> str:
    kind = urn.split(":", 2)[1]
    return kind if kind in ("svc", "db", "queue", "ext") else "svc"


def input_columns(mapping: UrnMapping) -> dict[str, str]:
    """The span columns the aggregation reads (name -> DuckDB type); the reader reads no others."""
    return {
        "_timestamp": "BIGINT", "trace_id": "VARCHAR", "span_id": "VARCHAR",
        "reference_parent_span_id": "VARCHAR", mapping.service_column: "VARCHAR", "span_kind": "VARCHAR",
        "span_status": "VARCHAR", "duration": "DOUBLE", **{c: "VARCHAR" for c in PEER_COLUMNS},
    }


def aggregate_calls(
    streams: Sequence[tuple[str, pa.Table]],
    bucket_start_us: int,
    bucket_end_us: int,
    mapping: UrnMapping,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> CallResult:
    """Edges of the buckets in ``[bucket_start, bucket_end)`` from spans of :func:`read_range`."""
    if not streams:
        return CallResult(CALL_ROW_SCHEMA.empty_table(), [])
    con = con or connect_duckdb()
    stream_union_view(con, "spans", [table for _, table in streams], input_columns(mapping))
    fallback_urn = mapping.fallback.template.lower()
    sql = _EDGES_SQL.format(svc=quote_ident(mapping.service_column), kind=_KIND_SQL,
                            spans=spans_with_peers_sql("spans"), mask=MASK_URN_SQL)
    con.execute("CREATE OR REPLACE TEMP TABLE edges AS " + sql,
                {"bstart": bucket_start_us, "bend": bucket_end_us, "fallback": fallback_urn})
    rows = con.sql(_ROWS_SQL, params={"bucket": BUCKET_US}).to_arrow_table()
    names = [name for name, _ in streams]
    stream_col = pa.array([names[i] for i in rows.column("stream_idx").to_pylist()], pa.string())
    rows = rows.drop_columns(["stream_idx"]).append_column("stream", stream_col).cast(CALL_ROW_SCHEMA)
    resources = []
    for r in con.sql(_RESOURCES_SQL).to_arrow_table().to_pylist():
        labels = {mapping.service_column: r["svc"]} if r["svc"] is not None else {}
        rtype = mapping.fallback.type if r["urn"] == fallback_urn else _resource_type(r["urn"])
        resources.append(SeenResource(r["urn"], rtype, int(r["first_us"]), int(r["last_us"]), labels))
    renames = [UrnRename(r["legacy_urn"], r["urn"], _resource_type(r["urn"]))
               for r in con.sql(_RENAMES_SQL).to_arrow_table().to_pylist()]
    return CallResult(rows, resources, renames)
