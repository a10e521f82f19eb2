"""Scenarios for the age-refresh tests: rows written straight into service_call_5m, and two independent truths.

``expected_edges`` computes the active edges in plain Python from the rows the
test wrote; ``sql_truth`` computes them with its own SQL from service_call_5m.
``graph_edges`` reads the AGE graph back through Cypher. A test compares all
three, prop by prop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg2

BUCKET = timedelta(minutes=5)
EdgeKey = tuple[int, str, str]  # (tenant_id, src urn, dst urn)


@dataclass(frozen=True)
class Call:
    bucket: datetime
    src: str
    dst: str
    calls: int
    errors: int = 0
    p95_ms: float | None = None


def tenant_id(pg_url: str, code: str) -> int:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO dim_tenant (code, name) VALUES (%s, %s) ON CONFLICT (code) DO NOTHING", (code, code))
        cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (code,))
        return int(cur.fetchone()[0])


def write_calls(pg_url: str, tenant: int, calls: Iterable[Call]) -> None:
    """Upsert bucket rows (and their resources) the way the aggregation job would."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        for c in calls:
            ids = []
            for urn in (c.src, c.dst):
                cur.execute("INSERT INTO dim_resource (tenant_id, urn, type) VALUES (%s, %s, 'service') "
                            "ON CONFLICT (tenant_id, urn) DO NOTHING", (tenant, urn))
                cur.execute("SELECT id FROM dim_resource WHERE tenant_id = %s AND urn = %s", (tenant, urn))
                ids.append(cur.fetchone()[0])
            cur.execute(
                "INSERT INTO service_call_5m (bucket, tenant_id, src_id, dst_id, calls, errors, rps, err_rate, "
                "p50_ms, p95_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (bucket, tenant_id, src_id, dst_id) DO UPDATE SET calls = EXCLUDED.calls, "
                "errors = EXCLUDED.errors, rps = EXCLUDED.rps, err_rate = EXCLUDED.err_rate, "
                "p95_ms = EXCLUDED.p95_ms",
                (c.bucket, tenant, ids[0], ids[1], c.calls, c.errors, c.calls / 300.0,
                 c.errors / c.calls if c.calls else None, None, c.p95_ms))


def expected_edges(tenant: int, calls: Iterable[Call], at: datetime, seconds: float = 600.0) -> dict[EdgeKey, dict]:
    """The active edges of [at - 10 min, at) computed in Python from the rows written."""
    grouped: dict[EdgeKey, list[Call]] = {}
    for c in calls:
        if at - timedelta(minutes=10) <= c.bucket and c.bucket + BUCKET <= at:
            grouped.setdefault((tenant, c.src, c.dst), []).append(c)
    out = {}
    for key, rows in grouped.items():
        total = sum(r.calls for r in rows)
        if total <= 0:
            continue
        errors = sum(r.errors for r in rows)
        p95s = [r.p95_ms for r in rows if r.calls > 0 and r.p95_ms is not None]
        last = max(r.bucket for r in rows if r.calls > 0) + BUCKET
        out[key] = {"tenant_id": tenant, "calls": total, "rps": total / seconds, "err_rate": errors / total,
                    "p95": max(p95s) if p95s else None, "last_seen": last.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return out


def sql_truth(pg_url: str, tenant: int, at: datetime) -> dict[EdgeKey, dict]:
    """The same edges computed by an independent SQL query over service_call_5m."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT s.urn, d.urn, sum(c.calls), sum(c.errors),
                   max(c.p95_ms) FILTER (WHERE c.calls > 0),
                   max(c.bucket) FILTER (WHERE c.calls > 0) + interval '5 minutes'
              FROM service_call_5m c JOIN dim_resource s ON s.id = c.src_id JOIN dim_resource d ON d.id = c.dst_id
             WHERE c.tenant_id = %(t)s AND c.bucket >= %(at)s - interval '10 minutes'
               AND c.bucket <= %(at)s - interval '5 minutes'
             GROUP BY 1, 2 HAVING sum(c.calls) > 0
            """, {"t": tenant, "at": at})
        return {(tenant, src, dst): {"tenant_id": tenant, "calls": int(calls), "rps": int(calls) / 600.0,
                                     "err_rate": int(errors) / int(calls), "p95": p95,
                                     "last_seen": last.strftime("%Y-%m-%dT%H:%M:%SZ")}
                for src, dst, calls, errors, p95, last in cur.fetchall()}


def _cypher_rows(pg_url: str, query: str, columns: int) -> list[tuple[Any, ...]]:
    cols = ", ".join(f"c{i} ag_catalog.agtype" for i in range(columns))
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("LOAD 'age'")
        cur.execute("SET search_path = public, ag_catalog")
        cur.execute(f"SELECT * FROM cypher('obs_graph', $$ {query} $$) AS ({cols})")
        return [tuple(json.loads(v) for v in row) for row in cur.fetchall()]


def graph_edges(pg_url: str) -> dict[EdgeKey, dict]:
    """Every CALLS edge of the graph, read through Cypher; endpoints must agree on the tenant."""
    rows = _cypher_rows(pg_url, "MATCH (a:Resource)-[e:CALLS]->(b:Resource) "
                                "RETURN a.tenant_id, a.urn, b.tenant_id, b.urn, properties(e)", 5)
    out: dict[EdgeKey, dict] = {}
    for a_tenant, a_urn, b_tenant, b_urn, props in rows:
        assert a_tenant == b_tenant == props["tenant_id"], (a_urn, b_urn, props)
        key = (a_tenant, a_urn, b_urn)
        assert key not in out, f"duplicate edge {key}"
        out[key] = {"p95": None, **props}  # AGE may omit a null property
    return out


def graph_edge_ids(pg_url: str) -> dict[EdgeKey, tuple[int, int, int]]:
    """(edge id, start id, end id) per edge: equal ids after a refresh mean updated in place."""
    rows = _cypher_rows(pg_url, "MATCH (a:Resource)-[e:CALLS]->(b:Resource) "
                                "RETURN a.tenant_id, a.urn, b.urn, id(e), id(a), id(b)", 6)
    return {(t, a, b): (e, ia, ib) for t, a, b, e, ia, ib in rows}


def graph_vertices(pg_url: str) -> list[tuple[int, str]]:
    return sorted(_cypher_rows(pg_url, "MATCH (v:Resource) RETURN v.tenant_id, v.urn", 2))


def relational_edges(pg_url: str, tenant: int) -> dict[EdgeKey, dict]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT src_urn, dst_urn, calls, rps, err_rate, p95, last_seen FROM active_call_edge "
                    "WHERE tenant_id = %s", (tenant,))
        return {(tenant, s, d): {"tenant_id": tenant, "calls": calls, "rps": rps, "err_rate": err, "p95": p95,
                                 "last_seen": last.strftime("%Y-%m-%dT%H:%M:%SZ")}
                for s, d, calls, rps, err, p95, last in cur.fetchall()}


def ledger_status(pg_url: str, tenant: int, at: datetime) -> str | None:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM etl_job_run WHERE job = 'age-refresh' AND tenant_id = %s AND window_to = %s",
                    (tenant, at))
        row = cur.fetchone()
        return None if row is None else str(row[0])


def only_tenant(edges: dict[EdgeKey, dict], tenant: int) -> dict[EdgeKey, dict]:
    return {k: v for k, v in edges.items() if k[0] == tenant}
