"""A comparable picture of the oo-agg output tables, free of surrogate ids and processing times.

Two databases filled from the same data by different paths (catch-up, clears, backfills,
one clean ``obs-etl run``) must give equal snapshots. Ids are replaced by natural keys
(tenant code, resource URN, locator stream and window); ``created_at``/``updated_at`` and
other processing timestamps are left out. Floats are rounded to 9 significant digits so
that a summation order inside DuckDB cannot make equal results look different.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg2

# Natural key of a locator, used wherever a fact row points at one.
_LOCATOR_KEY = "l.stream_type, l.stream, l.window_from, l.window_to"

SNAPSHOT_QUERIES: dict[str, str] = {
    "dim_resource": """
        SELECT t.code, r.urn, r.type, r.labels::text
        FROM dim_resource r JOIN dim_tenant t ON t.id = r.tenant_id""",
    "oo_locator": """
        SELECT t.code, l.stream_type, l.stream, l.window_from, l.window_to, l.sql_hint, l.ui_url,
               l.object_keys::text, l.record_count
        FROM oo_locator l JOIN dim_tenant t ON t.id = l.tenant_id""",
    "metric_1m": f"""
        SELECT m.bucket, t.code, r.urn, m.metric, m.kind, m.avg, m.max, m.p95, m.min, m.count, m.sum,
               {_LOCATOR_KEY}
        FROM metric_1m m JOIN dim_tenant t ON t.id = m.tenant_id JOIN dim_resource r ON r.id = m.resource_id
        LEFT JOIN oo_locator l ON l.id = m.locator_id""",  # noqa: S608 - fixed text
    "service_call_5m": f"""
        SELECT c.bucket, t.code, s.urn, d.urn, c.calls, c.errors, c.rps, c.err_rate, c.p50_ms, c.p95_ms,
               {_LOCATOR_KEY}
        FROM service_call_5m c JOIN dim_tenant t ON t.id = c.tenant_id
        JOIN dim_resource s ON s.id = c.src_id JOIN dim_resource d ON d.id = c.dst_id
        LEFT JOIN oo_locator l ON l.id = c.locator_id""",  # noqa: S608 - fixed text
    "log_pattern_5m": f"""
        SELECT p.bucket, t.code, r.urn, p.fingerprint, p.count, p.count_error, {_LOCATOR_KEY}
        FROM log_pattern_5m p JOIN dim_tenant t ON t.id = p.tenant_id JOIN dim_resource r ON r.id = p.resource_id
        LEFT JOIN oo_locator l ON l.id = p.locator_id""",  # noqa: S608 - fixed text
}


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.9g}")
    return value


def snapshot(pg_url: str, tables: tuple[str, ...] = tuple(SNAPSHOT_QUERIES)) -> dict[str, list[tuple[Any, ...]]]:
    """Sorted, id-free rows of each table."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            for name in tables:
                cur.execute(SNAPSHOT_QUERIES[name])
                rows = [tuple(_normalise(v) for v in row) for row in cur.fetchall()]
                out[name] = sorted(rows, key=repr)
    finally:
        conn.close()
    return out


def diff_snapshots(got: dict[str, list[tuple[Any, ...]]], want: dict[str, list[tuple[Any, ...]]],
                   limit: int = 5) -> str:
    """A short human-readable difference ('' when equal)."""
    lines = []
    for name in sorted(set(got) | set(want)):
        g, w = set(got.get(name, [])), set(want.get(name, []))
        if g == w and len(got.get(name, [])) == len(want.get(name, [])):
            continue
        lines.append(f"{name}: {len(got.get(name, []))} rows vs {len(want.get(name, []))} in the clean run")
        lines += [f"  only here:  {r}" for r in sorted(g - w, key=repr)[:limit]]
        lines += [f"  only clean: {r}" for r in sorted(w - g, key=repr)[:limit]]
    return "\n".join(lines)


def row_counts(snap: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    return {name: len(rows) for name, rows in snap.items()}


def ledger(pg_url: str, job: str = "oo-agg") -> list[tuple[Any, ...]]:
    """(tenant, window_from, window_to, status, attempts) of every ledger row of a job."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT t.code, e.window_from, e.window_to, e.status, e.attempts
                           FROM etl_job_run e JOIN dim_tenant t ON t.id = e.tenant_id
                           WHERE e.job = %s ORDER BY 1, 2""", (job,))
            return list(cur.fetchall())
    finally:
        conn.close()
