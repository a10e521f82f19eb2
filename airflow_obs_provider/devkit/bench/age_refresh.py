"""``obs-etl bench age-refresh``: seconds per refresh of the active call graph, set-based vs naive MERGE.

Scenario (full size): 2,000 services, 10,000 active edges, and between two
refreshes 10% of the edges stop while as many new ones start (the others get
new props). Each refresh T reads its own two 5-minute buckets. The set-based
refresh is the real job (ledger included); the naive one computes the same
active edges, then runs one parameterised Cypher MERGE per edge (plus a MATCH
... SET: AGE 1.5.0 drops a SET on an edge its own query's MERGE just created)
and one DELETE per stale edge. Both run in scratch databases that are dropped
afterwards. With --quick the naive loop runs every refresh and the two final
graphs are compared; at full size it would need many minutes per refresh, so a
churn refresh on the full graph is timed on a sample of edges and scaled.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extras import execute_values

from airflow_obs_provider.devkit.bench.scratch import scratch_database
from airflow_obs_provider.engine.age_graph import (
    active_window_ending,
    prepare_age_session,
    refresh_params,
    require_refresh_schema,
    sql_sections,
)
from airflow_obs_provider.engine.db import connect, ensure_tenant
from airflow_obs_provider.jobs.age_refresh import run

TENANT = "bench"
BASE = datetime(2024, 5, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)  # refreshes 10 minutes apart: each window holds fresh buckets only
TARGET_SECONDS = 5.0

_NAIVE_MERGE = """PREPARE obs_naive_merge(ag_catalog.agtype) AS
SELECT * FROM ag_catalog.cypher('obs_graph', $$
  MERGE (a:Resource {urn: $src, tenant_id: $tenant})
  MERGE (b:Resource {urn: $dst, tenant_id: $tenant})
  MERGE (a)-[e:CALLS {tenant_id: $tenant}]->(b)
$$, $1) AS (r ag_catalog.agtype)"""
# A separate SET: AGE 1.5.0 silently drops a SET on an edge the same query's MERGE created.
_NAIVE_SET = """PREPARE obs_naive_set(ag_catalog.agtype) AS
SELECT * FROM ag_catalog.cypher('obs_graph', $$
  MATCH (a:Resource {urn: $src, tenant_id: $tenant})-[e:CALLS {tenant_id: $tenant}]->(b:Resource {urn: $dst, tenant_id: $tenant})
  SET e.calls = $calls, e.rps = $rps, e.err_rate = $err_rate, e.p95 = $p95, e.last_seen = $last_seen
$$, $1) AS (r ag_catalog.agtype)"""
_NAIVE_DELETE = """PREPARE obs_naive_delete(ag_catalog.agtype) AS
SELECT * FROM ag_catalog.cypher('obs_graph', $$
  MATCH (a:Resource {urn: $src, tenant_id: $tenant})-[e:CALLS]->(b:Resource {urn: $dst, tenant_id: $tenant})
  DELETE e
$$, $1) AS (r ag_catalog.agtype)"""
_NAIVE_ORPHANS = """PREPARE obs_naive_orphans(ag_catalog.agtype) AS
SELECT * FROM ag_catalog.cypher('obs_graph', $$
  MATCH (v:Resource {tenant_id: $tenant}) WHERE NOT exists((v)-[]-()) DELETE v
$$, $1) AS (r ag_catalog.agtype)"""
_READ_GRAPH = """PREPARE obs_read_graph(ag_catalog.agtype) AS
SELECT * FROM ag_catalog.cypher('obs_graph', $$
  MATCH (a:Resource)-[e:CALLS]->(b:Resource) WHERE e.tenant_id = $tenant RETURN a.urn, b.urn, properties(e)
$$, $1) AS (src ag_catalog.agtype, dst ag_catalog.agtype, props ag_catalog.agtype)"""


@dataclass(frozen=True)
class Size:
    services: int
    edges: int
    churn: float
    refreshes: int
    naive_sample: int | None  # None: the naive loop runs every refresh in full


# The naive loop needs minutes per refresh at full size (over 14 min for the first
# load alone here), so at full size it times a sample of a churn refresh on the
# full graph and scales it to all edges; --quick runs it in full and compares graphs.
FULL = Size(services=2000, edges=10_000, churn=0.10, refreshes=4, naive_sample=300)
QUICK = Size(services=100, edges=500, churn=0.10, refreshes=3, naive_sample=None)


def edge_sets(size: Size, seed: int = 7) -> list[set[tuple[int, int]]]:
    """One active edge set per refresh; each differs from the previous by ``churn`` of its edges."""
    rng = random.Random(seed)

    def new_edge(taken: set[tuple[int, int]]) -> tuple[int, int]:
        while True:
            src, dst = rng.randrange(size.services), rng.randrange(size.services)
            if src != dst and (src, dst) not in taken:
                return src, dst

    current: set[tuple[int, int]] = set()
    while len(current) < size.edges:
        current.add(new_edge(current))
    sets = [set(current)]
    swap = int(size.edges * size.churn)
    for _ in range(size.refreshes - 1):
        gone = set(rng.sample(sorted(current), swap))
        taken = current | gone
        fresh: set[tuple[int, int]] = set()
        while len(fresh) < swap:
            edge = new_edge(taken | fresh)
            fresh.add(edge)
        current = (current - gone) | fresh
        sets.append(set(current))
    return sets


def load_scenario(pg_url: str, size: Size, seed: int = 7) -> list[datetime]:
    """Write the services and every refresh's two buckets; return the refresh times T."""
    rng = random.Random(seed + 1)
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            tenant_id = ensure_tenant(cur, TENANT, configured=(TENANT,))  # the bench's scratch tenant
            execute_values(cur, "INSERT INTO dim_resource (tenant_id, urn, type) VALUES %s",
                           [(tenant_id, f"urn:svc:bench-{i:05d}", "service") for i in range(size.services)])
            cur.execute("SELECT urn, id FROM dim_resource WHERE tenant_id = %s", (tenant_id,))
            ids = {int(urn.rsplit("-", 1)[1]): rid for urn, rid in cur.fetchall()}
            times = []
            for k, edges in enumerate(edge_sets(size, seed)):
                at = BASE + (k + 1) * STEP
                rows = []
                for bucket in (at - STEP, at - STEP / 2):
                    for src, dst in edges:
                        calls = rng.randint(1, 5000)
                        errors = rng.randint(0, calls // 20)
                        rows.append((bucket, tenant_id, ids[src], ids[dst], calls, errors, calls / 300.0,
                                     errors / calls, rng.uniform(1, 50), rng.uniform(50, 900)))
                execute_values(cur, "INSERT INTO service_call_5m (bucket, tenant_id, src_id, dst_id, calls, errors, "
                                    "rps, err_rate, p50_ms, p95_ms) VALUES %s", rows, page_size=5000)
                times.append(at)
        conn.commit()
    finally:
        conn.close()
    return times


def bench_set_based(pg_url: str, times: list[datetime]) -> list[float]:
    seconds = []
    for at in times:
        t0 = time.perf_counter()
        result = run(TENANT, at, pg_url=pg_url)
        seconds.append(time.perf_counter() - t0)
        if result.status != "success":
            raise RuntimeError(f"set-based refresh at {at.isoformat()} ended {result.status}")
    return seconds


def bench_naive(pg_url: str, times: list[datetime], sample: int | None = None) -> list[float]:
    """One MERGE (+ SET) per active edge and one DELETE per stale edge, in one transaction per refresh.

    With ``sample``, each refresh runs only that many edge MERGEs and stale DELETEs,
    rolls back, and reports the time scaled to all of them (the rest of the refresh
    is timed in full).
    """
    seconds = []
    conn = connect(pg_url)
    try:
        cur = conn.cursor()
        tenant_id = ensure_tenant(cur, TENANT)
        require_refresh_schema(cur)  # active_call_edge holds the truth both approaches start from
        prepare_age_session(cur)  # Cypher's rewritten SQL names ag_catalog operators unqualified
        for statement in (_NAIVE_MERGE, _NAIVE_SET, _NAIVE_DELETE, _NAIVE_ORPHANS, _READ_GRAPH):
            cur.execute(statement)  # prepared statements outlive transactions
        conn.commit()
        for at in times:
            t0 = time.perf_counter()
            prepare_age_session(cur)
            params = refresh_params(tenant_id, active_window_ending(at))
            cur.execute(sql_sections()["relational_sync"], params)  # the same truth, then the slow part
            cur.execute("SELECT src_urn, dst_urn, calls, rps, err_rate, p95, "
                        "to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                        "FROM active_call_edge WHERE tenant_id = %s", (tenant_id,))
            wanted = cur.fetchall()
            existing = set(read_graph(cur, tenant_id))
            stale = sorted(existing - {(w[0], w[1]) for w in wanted})
            fixed = time.perf_counter() - t0
            merges, deletes = (wanted, stale) if sample is None else (wanted[:sample], stale[:sample])
            t1 = time.perf_counter()
            for src, dst, calls, rps, err_rate, p95, last_seen in merges:
                edge = json.dumps({"src": src, "dst": dst, "tenant": tenant_id, "calls": calls, "rps": rps,
                                   "err_rate": err_rate, "p95": p95, "last_seen": last_seen})
                cur.execute("EXECUTE obs_naive_merge(%s)", (edge,))
                cur.execute("EXECUTE obs_naive_set(%s)", (edge,))
            t2 = time.perf_counter()
            for src, dst in deletes:
                cur.execute("EXECUTE obs_naive_delete(%s)", (json.dumps({"src": src, "dst": dst,
                                                                         "tenant": tenant_id}),))
            t3 = time.perf_counter()
            if sample is None:
                cur.execute("EXECUTE obs_naive_orphans(%s)", (json.dumps({"tenant": tenant_id}),))
                conn.commit()
                seconds.append(time.perf_counter() - t0)
            else:
                conn.rollback()
                seconds.append(fixed + (t2 - t1) * len(wanted) / max(len(merges), 1)
                               + (t3 - t2) * len(stale) / max(len(deletes), 1))
    finally:
        conn.close()
    return seconds


def read_graph(cur: Any, tenant_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    """The tenant's edges through Cypher (the session must have run prepare_age_session and _READ_GRAPH)."""
    cur.execute("EXECUTE obs_read_graph(%s)", (json.dumps({"tenant": tenant_id}),))
    # AGE drops a property set to null; read both spellings as p95 = None
    return {(json.loads(s), json.loads(d)): {"p95": None, **json.loads(p)} for s, d, p in cur.fetchall()}


def final_graph(pg_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    conn = connect(pg_url)
    try:
        cur = conn.cursor()
        tenant_id = ensure_tenant(cur, TENANT)
        prepare_age_session(cur)
        cur.execute(_READ_GRAPH)
        graph = read_graph(cur, tenant_id)
        conn.rollback()
        return graph
    finally:
        conn.close()


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def cli_bench(args: argparse.Namespace) -> int:
    size = QUICK if args.quick else FULL
    swap = int(size.edges * size.churn)
    print(f"age-refresh bench: {size.services} services, {size.edges} active edges, churn {size.churn:.0%} "
          f"({swap} edges stop and {swap} start) between refreshes")
    with scratch_database(args.pg_url, "obs_bench_age_set") as url:
        times = load_scenario(url, size)
        set_based = bench_set_based(url, times)
        set_graph = final_graph(url)
    with scratch_database(args.pg_url, "obs_bench_age_naive") as url:
        times = load_scenario(url, size)
        if size.naive_sample is None:
            naive = bench_naive(url, times)
            naive_graph = final_graph(url)
        else:  # the full graph of the first T comes from the set-based job, then sampled churn refreshes
            run(TENANT, times[0], pg_url=url)
            naive = bench_naive(url, times[1:2], sample=size.naive_sample)
    churn_set = set_based[1:]
    mean_set = sum(churn_set) / len(churn_set)
    mean_naive = sum(naive[1:] if size.naive_sample is None else naive) / len(naive[1:] or naive)
    print(f"set-based SQL on AGE label tables: first load {set_based[0]:.3f} s; churn refreshes {_fmt(churn_set)} s "
          f"(mean {mean_set:.3f} s)")
    if size.naive_sample is None:
        print(f"naive one-MERGE-per-edge Cypher:  first load {naive[0]:.3f} s; churn refreshes {_fmt(naive[1:])} s "
              f"(mean {mean_naive:.3f} s)")
    else:
        print(f"naive one-MERGE-per-edge Cypher:  churn refresh on the full graph {mean_naive:.1f} s "
              f"(timed on {size.naive_sample} MERGEs and {size.naive_sample} DELETEs, scaled to all edges)")
    print(f"ratio naive / set-based per churn refresh: {mean_naive / mean_set:.1f}x")
    print(f"target under {TARGET_SECONDS:.0f} s per refresh: {'met' if max(set_based) < TARGET_SECONDS else 'MISSED'} "
          f"(slowest set-based refresh {max(set_based):.3f} s)")
    if size.naive_sample is None:
        same = set_graph == naive_graph
        print(f"final graphs of both approaches identical ({len(set_graph)} edges): {'yes' if same else 'NO'}")
    else:
        print(f"set-based final graph: {len(set_graph)} edges")
    return 0
