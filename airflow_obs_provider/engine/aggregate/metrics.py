"""``metric_1m``: per tenant, resource, metric and minute (design §5). The product's contract:

Each metric stream (one per metric name) is classified once per window:

- ``histogram``: a ``{name}_bucket`` stream with an ``le`` column. Written as metric ``{name}``.
- ``counter`` (delta): any point with ``aggregation_temporality`` ``..._DELTA``.
- ``gauge``: any point with ``is_monotonic = "false"`` (an up/down sum is a level).
- ``counter`` (cumulative, monotonic): ``is_monotonic = "true"``, or ``..._CUMULATIVE``
  temporality, or a ``_total``/``_count``/``_sum`` name suffix.
- ``gauge`` otherwise (summary ``quantile`` streams included: statistics of all points).

Statistics (``p95`` is the continuous percentile with linear interpolation, as
PostgreSQL ``percentile_cont``; ``avg`` = ``sum / count``; sums are taken in value order so
reruns give identical bits):

- gauge and delta counter: ``avg/max/p95/min/count/sum`` of the sample values in the minute.
- cumulative counter: every sample gets an increase over the previous sample of its series
  (``__hash__``; ordered by time, then value). A drop is a reset: the new value is the
  increase. A sample with no earlier sample within ``lookback`` (default 5 minutes) before
  its minute only sets the baseline (increase 0). Per resource and minute: ``sum`` = total
  increase, ``count`` = number of samples, and ``avg/min/max/p95`` over the per-series
  increases of the minute (one value per series with a sample in that minute).
- histogram: the increase of each cumulative ``le`` bucket (same reset rule, summed over
  the resource's series with that bound), made monotonic in ``le`` as Prometheus does;
  ``count`` = increase of the ``+Inf`` bucket (observations in the minute); ``p95`` as
  Prometheus ``histogram_quantile(0.95)``: linear interpolation inside the bucket holding
  the rank, the first bucket starting at 0, and the previous finite bound when the rank
  falls into ``+Inf``; no ``+Inf`` bucket or no observation gives NULL. ``sum`` = the
  increase of the ``{name}_sum`` stream for the same resource and minute when that stream
  was read (else NULL), ``avg`` = ``sum / count``; ``min``/``max`` are NULL (buckets do not
  bound them). If a stream named ``{name}`` also exists, the histogram keeps ``{name}_bucket``.

Only samples with ``start <= _timestamp < end`` are counted; the lookback is read only
for the previous values of cumulative series. NaN values are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from airflow_obs_provider.engine.aggregate.duck import connect_duckdb, quote_ident, stream_union_view
from airflow_obs_provider.engine.aggregate.resources import (
    SeenResource,
    labels_from_row,
    single_value_labels_sql,
)
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.window import Window

MINUTE_US = 60_000_000
DEFAULT_LOOKBACK_US = 5 * MINUTE_US
COUNTER_SUFFIXES = ("_total", "_count", "_sum")

_POINT_COLUMNS = {
    "_timestamp": "BIGINT",
    "value": "DOUBLE",
    "__hash__": "VARCHAR",
    "le": "VARCHAR",
    "is_monotonic": "VARCHAR",
    "aggregation_temporality": "VARCHAR",
}

# Columns of the result (one row per bucket, resource URN and metric).
METRIC_ROW_SCHEMA = pa.schema([
    ("bucket_us", pa.int64()), ("urn", pa.string()), ("metric", pa.string()), ("kind", pa.string()),
    ("avg", pa.float64()), ("max", pa.float64()), ("p95", pa.float64()), ("min", pa.float64()),
    ("count", pa.int64()), ("sum", pa.float64()), ("stream", pa.string()),
])


@dataclass(frozen=True)
class StreamFlags:
    has_le: bool
    delta: bool
    cumulative: bool
    monotonic_true: bool
    monotonic_false: bool


def classify_stream(name: str, flags: StreamFlags) -> str:
    """``histogram``, ``delta`` (delta counter), ``counter`` (cumulative) or ``gauge``; see the module doc."""
    if name.endswith("_bucket") and flags.has_le:
        return "histogram"
    if flags.delta:
        return "delta"
    if flags.monotonic_false and not flags.monotonic_true:
        return "gauge"
    if flags.monotonic_true or flags.cumulative or name.endswith(COUNTER_SUFFIXES):
        return "counter"
    return "gauge"


@dataclass(frozen=True)
class MetricResult:
    rows: pa.Table  # METRIC_ROW_SCHEMA
    resources: list[SeenResource]


_FLAGS_SQL = """
SELECT stream_idx,
       bool_or(le IS NOT NULL),
       bool_or(upper(aggregation_temporality) LIKE '%DELTA'),
       bool_or(upper(aggregation_temporality) LIKE '%CUMULATIVE'),
       bool_or(lower(is_monotonic) = 'true'),
       bool_or(lower(is_monotonic) = 'false')
FROM metric_points GROUP BY stream_idx
"""

_AGG_SQL = """
WITH pts AS (
  SELECT p.stream_idx, k.kind, k.metric, p.urn,
         coalesce(p.__hash__, p.urn || '|' || coalesce(p.le, '')) AS series, p.le,
         p._timestamp AS ts, p.value, p._timestamp - (p._timestamp % 60000000) AS minute
  FROM metric_points_urn p JOIN stream_kinds k USING (stream_idx)
  WHERE p.value IS NOT NULL AND NOT isnan(p.value) AND p._timestamp < $end
),
plain AS (
  SELECT minute, urn, metric, CASE any_value(kind) WHEN 'delta' THEN 'counter' ELSE 'gauge' END AS kind,
         max(value) AS max,
         quantile_cont(value, 0.95) AS p95, min(value) AS min, count(*) AS count,
         sum(value ORDER BY value) AS sum, min(stream_idx) AS stream_idx
  FROM pts WHERE kind IN ('gauge', 'delta') AND ts >= $start GROUP BY minute, urn, metric
),
seq AS (
  SELECT *, lag(value) OVER w AS prev_value, lag(ts) OVER w AS prev_ts
  FROM pts WHERE kind IN ('counter', 'histogram')
  WINDOW w AS (PARTITION BY stream_idx, urn, series, le ORDER BY ts, value)
),
inc AS (
  SELECT stream_idx, kind, metric, urn, series, le, minute,
         CASE WHEN prev_ts IS NULL OR prev_ts < minute - $lookback THEN 0.0
              WHEN value >= prev_value THEN value - prev_value
              ELSE value END AS inc
  FROM seq WHERE ts >= $start
),
series_inc AS (
  SELECT stream_idx, metric, urn, series, minute, sum(inc ORDER BY inc) AS inc, count(*) AS n
  FROM inc WHERE kind = 'counter' GROUP BY ALL
),
counter AS (
  SELECT minute, urn, metric, 'counter' AS kind, max(inc) AS max, quantile_cont(inc, 0.95) AS p95,
         min(inc) AS min, sum(n) AS count, sum(inc ORDER BY inc) AS sum, min(stream_idx) AS stream_idx
  FROM series_inc GROUP BY minute, urn, metric
),
hb0 AS (
  SELECT stream_idx, metric, urn, minute,
         CASE WHEN lower(trim(le)) IN ('inf', '+inf') THEN 'infinity'::DOUBLE ELSE TRY_CAST(le AS DOUBLE) END
           AS bound,
         sum(inc ORDER BY inc) AS inc
  FROM inc WHERE kind = 'histogram' GROUP BY ALL
),
hb1 AS (
  SELECT *, max(inc) OVER (PARTITION BY stream_idx, urn, minute ORDER BY bound
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum
  FROM hb0 WHERE bound IS NOT NULL
),
hb2 AS (
  SELECT *, lag(bound) OVER w AS prev_bound, coalesce(lag(cum) OVER w, 0.0) AS prev_cum,
         max(CASE WHEN isinf(bound) THEN cum END) OVER (PARTITION BY stream_idx, urn, minute) AS total
  FROM hb1 WINDOW w AS (PARTITION BY stream_idx, urn, minute ORDER BY bound)
),
hist AS (
  SELECT minute, urn, any_value(metric) AS metric, 'histogram' AS kind, any_value(total) AS total,
         arg_min(CASE WHEN isinf(bound) THEN prev_bound
                      WHEN prev_bound IS NULL AND bound <= 0 THEN bound
                      ELSE coalesce(prev_bound, 0.0)
                           + (bound - coalesce(prev_bound, 0.0)) * ((0.95 * total - prev_cum) / (cum - prev_cum))
                 END, bound) FILTER (WHERE cum >= 0.95 * total) AS p95,
         stream_idx
  FROM hb2 GROUP BY minute, urn, stream_idx
),
hist_rows AS (
  SELECT h.minute, h.urn, h.metric, h.kind, NULL::DOUBLE AS max,
         CASE WHEN h.total > 0 THEN h.p95 END AS p95, NULL::DOUBLE AS min,
         CAST(h.total AS BIGINT) AS count, c.sum AS sum, h.stream_idx
  FROM hist h LEFT JOIN counter c ON c.metric = h.metric || '_sum' AND c.urn = h.urn AND c.minute = h.minute
  WHERE h.total IS NOT NULL
),
all_rows AS (
  SELECT * FROM plain UNION ALL SELECT * FROM counter UNION ALL SELECT * FROM hist_rows
)
SELECT a.minute AS bucket_us, a.urn, a.metric, a.kind,
       CASE WHEN a.count > 0 THEN a.sum / a.count END AS avg, a.max, a.p95, a.min, a.count, a.sum,
       s.stream
FROM all_rows a JOIN stream_kinds s USING (stream_idx)
ORDER BY bucket_us, urn, metric
"""

_RESOURCES_SQL = """
SELECT urn, any_value(urn_type) AS type, min(_timestamp) AS first_us, max(_timestamp) AS last_us, {labels}
FROM metric_points_urn WHERE _timestamp >= $start AND _timestamp < $end
  AND value IS NOT NULL AND NOT isnan(value)
GROUP BY urn ORDER BY urn
"""


def input_columns(mapping: UrnMapping) -> dict[str, str]:
    """The point columns the aggregation reads (name -> DuckDB type); the reader reads no others."""
    return {**_POINT_COLUMNS, **{c: "VARCHAR" for c in mapping.columns}}


def read_range(window: Window, lookback_us: int = DEFAULT_LOOKBACK_US) -> tuple[int, int]:
    """The ``_timestamp`` range a metric window reads: the lookback for counters' previous values."""
    return window.start_us - lookback_us, window.end_us


def aggregate_metrics(
    streams: Sequence[tuple[str, pa.Table]],
    window: Window,
    mapping: UrnMapping,
    *,
    lookback_us: int = DEFAULT_LOOKBACK_US,
    con: duckdb.DuckDBPyConnection | None = None,
) -> MetricResult:
    """Aggregate metric ``streams`` (name, points over :func:`read_range`) into ``metric_1m`` rows."""
    if not streams:
        return MetricResult(METRIC_ROW_SCHEMA.empty_table(), [])
    con = con or connect_duckdb()
    stream_union_view(con, "metric_points", [table for _, table in streams], input_columns(mapping))
    # the URN expressions are built from quoted column names and escaped literals (urn.py)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE metric_points_urn AS SELECT *, "  # noqa: S608
        f"{mapping.urn_sql()} AS urn, {mapping.type_sql()} AS urn_type FROM metric_points"
    )

    flags = {row[0]: StreamFlags(*(bool(v) for v in row[1:])) for row in con.execute(_FLAGS_SQL).fetchall()}
    names = {name for name, _ in streams}
    kinds = []
    for i, (name, _) in enumerate(streams):
        kind = classify_stream(name, flags.get(i, StreamFlags(False, False, False, False, False)))
        metric = name
        if kind == "histogram" and name[: -len("_bucket")] not in names:
            metric = name[: -len("_bucket")]
        kinds.append({"stream_idx": i, "stream": name, "kind": kind, "metric": metric})
    con.register("stream_kinds", pa.Table.from_pylist(kinds, schema=pa.schema([
        ("stream_idx", pa.int32()), ("stream", pa.string()), ("kind", pa.string()), ("metric", pa.string())])))

    params = {"start": window.start_us, "end": window.end_us, "lookback": lookback_us}
    rows = con.sql(_AGG_SQL, params=params).to_arrow_table()
    rows = rows.cast(METRIC_ROW_SCHEMA)

    label_sql = single_value_labels_sql(mapping.columns, quote_ident)
    res_table = con.sql(_RESOURCES_SQL.format(labels=label_sql), params=
                            {"start": window.start_us, "end": window.end_us}).to_arrow_table()
    resources = [
        SeenResource(r["urn"], r["type"], int(r["first_us"]), int(r["last_us"]), labels_from_row(r, mapping.columns))
        for r in res_table.to_pylist()
    ]
    return MetricResult(rows, resources)
