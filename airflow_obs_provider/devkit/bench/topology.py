"""``obs-etl bench topology``: how long the temporal diff takes for a large edge set with churn.

Builds a synthetic topology of N edges, applies it as a first observation, then
applies a second observation where 1% of the edges vanished and as many new ones
appeared, and finally the same observation again (which must write nothing).
Runs in a scratch database that it creates, bootstraps and drops. Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.devkit.bench.scratch import scratch_database
from airflow_obs_provider.engine.db import connect, ensure_tenant, redact_url
from airflow_obs_provider.engine.topology.diff import DiffResult, apply_observation
from airflow_obs_provider.engine.topology.model import Topology

EDGE_TYPES = ("DEPENDS_ON", "ROUTES_TO", "IN_SUBNET", "SECURED_BY")


def synthetic_topology(edges: int, churn: float, seed: int, *, variant: int) -> Topology:
    """``edges`` edges over ~edges/4 nodes; variant 1 drops ``churn`` of them and adds as many new ones."""
    rng = random.Random(seed)
    nodes = max(10, edges // 4)
    pairs: set[tuple[int, int, str]] = set()
    while len(pairs) < edges:
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a != b:
            pairs.add((a, b, EDGE_TYPES[rng.randrange(len(EDGE_TYPES))]))
    ordered = sorted(pairs)
    if variant:
        changed = int(edges * churn)
        rng.shuffle(ordered)
        ordered = ordered[changed:]
        extra: set[tuple[int, int, str]] = set()
        while len(extra) < changed:
            a, b = rng.randrange(nodes), rng.randrange(nodes)
            edge = (a, b, "NEW_LINK")
            if a != b:
                extra.add(edge)
        ordered += sorted(extra)
    topo = Topology("terraform")
    for i in range(nodes):
        topo.add_node(f"urn:tf:module.bench.aws_instance.n[{i}]", "aws_instance", {"id": f"i-{i:012x}"})
    for a, b, kind in ordered:
        topo.add_edge(f"urn:tf:module.bench.aws_instance.n[{a}]", f"urn:tf:module.bench.aws_instance.n[{b}]", kind)
    return topo


def _timed_apply(pg_url: str, tenant_id: int, topo: Topology, at: datetime) -> tuple[DiffResult, float]:
    conn = connect(pg_url, application_name="obs-etl bench topology")
    try:
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            result = apply_observation(cur, tenant_id, topo, at)
        conn.commit()
        return result, time.perf_counter() - t0
    finally:
        conn.close()


def bench(pg_url: str | None, edges: int, churn: float = 0.01, seed: int = 7) -> list[str]:
    """Run the benchmark in a scratch database on ``pg_url``'s server; returns the printed lines."""
    with scratch_database(pg_url, "obs_bench_topo") as scratch:
        server, name = redact_url(scratch).rsplit("/", 1)
        lines = [f"topology diff benchmark: {edges} edges, {churn:.1%} churn, scratch database {name} on {server}"]
        conn = connect(scratch, autocommit=True)
        with conn.cursor() as cur:
            tenant_id = ensure_tenant(cur, "bench", configured=("bench",))  # the scratch database's tenant
        conn.close()
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        build = time.perf_counter()
        first, second = (synthetic_topology(edges, churn, seed, variant=v) for v in (0, 1))
        lines.append(f"  build both observations in Python: {time.perf_counter() - build:.2f} s")
        for label, topo, at in (("first observation (all new)", first, t0),
                                (f"second observation ({churn:.0%} churn)", second, t0 + timedelta(hours=1)),
                                ("identical observation again", second, t0 + timedelta(hours=2))):
            result, seconds = _timed_apply(scratch, tenant_id, topo, at)
            lines.append(f"  {label}: {seconds:.2f} s, {result.edges} edges observed, +{result.opened} opened, "
                         f"-{result.closed} closed, {result.nodes_written} nodes written "
                         f"({result.edges / seconds:,.0f} edges/s)")
    return lines


def cli_bench(args: argparse.Namespace) -> int:
    """``obs-etl bench topology [--quick] [--pg-url URL]`` (100k edges, or 5k with --quick)."""
    for line in bench(args.pg_url, 5_000 if args.quick else 100_000):
        print(line, flush=True)
    return 0
