"""Reading back what ``oo-agg`` wrote, by URN (surrogate ids differ between databases)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from airflow_obs_provider.engine.window import to_us

# Tables whose contents a window may change (the ledger is compared separately).
DATA_TABLES = ("dim_tenant", "dim_resource", "oo_locator", "metric_1m", "service_call_5m", "log_pattern",
               "log_pattern_alias", "log_miner_state", "log_pattern_5m")


def dump_tables(pg_url: str, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, list[str]]:
    """Every row of every table as its text form, sorted: equal dumps mean byte-identical tables."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            out = {}
            for t in tables:
                cur.execute(sql.SQL("SELECT x::text FROM {} x ORDER BY 1").format(sql.Identifier(t)))
                out[t] = [r[0] for r in cur.fetchall()]
            return out
    finally:
        conn.close()


def content_by_urn(pg_url: str, tenant: str) -> dict[str, Any]:
    """Table contents without surrogate ids, locator ids or timings (for comparing two databases)."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (tenant,))
            tid = cur.fetchone()[0]
            cur.execute("SELECT urn, type, labels::text, first_seen, last_seen FROM dim_resource "
                        "WHERE tenant_id = %s ORDER BY urn", (tid,))
            resources = cur.fetchall()
            cur.execute("""SELECT m.bucket, r.urn, m.metric, m.kind, m.avg, m.max, m.p95, m.min, m.count, m.sum,
                                  l.stream, l.window_from, l.window_to
                           FROM metric_1m m JOIN dim_resource r ON r.id = m.resource_id
                           LEFT JOIN oo_locator l ON l.id = m.locator_id WHERE m.tenant_id = %s ORDER BY 1, 2, 3""",
                        (tid,))
            metrics = cur.fetchall()
            cur.execute("""SELECT c.bucket, s.urn, d.urn, c.calls, c.errors, c.rps, c.err_rate, c.p50_ms, c.p95_ms,
                                  l.stream, l.window_from, l.window_to
                           FROM service_call_5m c JOIN dim_resource s ON s.id = c.src_id
                           JOIN dim_resource d ON d.id = c.dst_id
                           LEFT JOIN oo_locator l ON l.id = c.locator_id WHERE c.tenant_id = %s ORDER BY 1, 2, 3""",
                        (tid,))
            calls = cur.fetchall()
            cur.execute("""SELECT stream_type, stream, window_from, window_to, sql_hint, ui_url, object_keys::text,
                                  record_count FROM oo_locator WHERE tenant_id = %s ORDER BY 1, 2, 3, 4""", (tid,))
            locators = cur.fetchall()
            return {"resources": resources, "metrics": metrics, "calls": calls, "locators": locators}
    finally:
        conn.close()


def _us(ts: datetime) -> int:
    return to_us(ts)


def metric_rows(pg_url: str, tenant: str) -> dict[tuple[int, str, str], dict[str, Any]]:
    return {(_us(r[0]), r[1], r[2]): dict(zip(("kind", "avg", "max", "p95", "min", "count", "sum"), r[3:10], strict=True))
            for r in content_by_urn(pg_url, tenant)["metrics"]}


def call_rows(pg_url: str, tenant: str) -> dict[tuple[int, str, str], dict[str, Any]]:
    names = ("calls", "errors", "rps", "err_rate", "p50_ms", "p95_ms")
    return {(_us(r[0]), r[1], r[2]): dict(zip(names, r[3:9], strict=True))
            for r in content_by_urn(pg_url, tenant)["calls"]}


def ledger(pg_url: str, job: str = "oo-agg", tenant: str | None = None) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT window_from, window_to, status, attempts, error FROM etl_job_run r "
                        "JOIN dim_tenant t ON t.id = r.tenant_id WHERE job = %s AND (%s IS NULL OR t.code = %s) "
                        "ORDER BY window_from, window_to", (job, tenant, tenant))
            return cur.fetchall()
    finally:
        conn.close()


def write_config(folder: Path, source_yaml: str, tenant: str = "acme", extra: str = "") -> Path:
    """A minimal ETL YAML beside the data (source paths relative to it)."""
    path = folder / "etl.yaml"
    path.write_text(f"tenants:\n  - code: {tenant}\n    source: {source_yaml}\n{extra}")
    return path


def assert_rows_equal(got: dict[Any, dict[str, Any]], want: dict[Any, dict[str, Any]], rel: float = 1e-9) -> None:
    """Same keys, every column equal (floats to ``rel``, integers and text exactly)."""
    import math

    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, f"missing rows {missing[:5]} / unexpected rows {extra[:5]}"
    for key, w in want.items():
        g = got[key]
        for col, wv in w.items():
            gv = g[col]
            if isinstance(wv, float) and gv is not None:
                assert math.isclose(gv, wv, rel_tol=rel, abs_tol=1e-12), f"{key} {col}: got {gv}, want {wv}"
            else:
                assert gv == wv, f"{key} {col}: got {gv!r}, want {wv!r}"
