"""age-refresh on the real dev-stack Postgres with AGE: the graph read back through Cypher equals the truth."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from support.age_scenarios import (
    Call,
    expected_edges,
    graph_edge_ids,
    graph_edges,
    graph_vertices,
    ledger_status,
    only_tenant,
    relational_edges,
    sql_truth,
    tenant_id,
    write_calls,
)

from airflow_obs_provider.jobs.age_refresh import run

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def test_refresh_twice_keeps_edge_set_and_updates_props_in_place(pg_url: str) -> None:
    t = tenant_id(pg_url, "twice")
    calls = [Call(T0, "urn:svc:web", "urn:svc:api", 300, 3, 40.0),
             Call(T0 + 5 * M, "urn:svc:web", "urn:svc:api", 600, 0, 55.5),
             Call(T0 + 5 * M, "urn:svc:api", "urn:db:postgresql:orders", 900, 9, 7.25)]
    write_calls(pg_url, t, calls)
    first = run("twice", T0 + 10 * M, pg_url=pg_url)
    assert first.status == "success" and first.details["graph_mode"] == "age"
    ids_before = graph_edge_ids(pg_url)
    vertices_before = graph_vertices(pg_url)
    assert only_tenant(graph_edges(pg_url), t) == expected_edges(t, calls, T0 + 10 * M)

    again = run("twice", T0 + 10 * M, pg_url=pg_url)  # a rerun of the same T changes nothing
    assert again.details["edges_created"] == again.details["edges_updated"] == again.details["edges_deleted"] == 0
    assert graph_edge_ids(pg_url) == ids_before

    more = [Call(T0 + 10 * M, "urn:svc:web", "urn:svc:api", 1200, 120, 80.0),
            Call(T0 + 10 * M, "urn:svc:api", "urn:db:postgresql:orders", 30, 0, 3.0)]
    write_calls(pg_url, t, more)
    nxt = run("twice", T0 + 15 * M, pg_url=pg_url)
    graph = only_tenant(graph_edges(pg_url), t)
    assert graph == expected_edges(t, calls + more, T0 + 15 * M) == sql_truth(pg_url, t, T0 + 15 * M)
    assert graph[(t, "urn:svc:web", "urn:svc:api")] == {
        "tenant_id": t, "calls": 1800, "rps": 1800 / 600, "err_rate": 120 / 1800, "p95": 80.0,
        "last_seen": "2024-05-01T12:15:00Z"}
    assert set(graph) == {k for k in ids_before if k[0] == t}
    assert graph_edge_ids(pg_url) == ids_before  # same edge and vertex ids: updated in place
    assert graph_vertices(pg_url) == vertices_before
    assert (nxt.details["edges_updated"], nxt.details["edges_created"], nxt.details["edges_deleted"]) == (2, 0, 0)


def test_edge_whose_calls_stop_disappears_after_10_minutes(pg_url: str) -> None:
    t = tenant_id(pg_url, "stops")
    steady = [Call(T0 + k * 5 * M, "urn:svc:a", "urn:svc:b", 100, 1, 9.0) for k in range(4)]
    stopping = [Call(T0, "urn:svc:a", "urn:svc:legacy", 50, 0, 20.0)]  # last calls in [12:00, 12:05)
    write_calls(pg_url, t, steady + stopping)
    run("stops", T0 + 10 * M, pg_url=pg_url)
    assert (t, "urn:svc:a", "urn:svc:legacy") in graph_edges(pg_url)
    assert graph_edges(pg_url)[(t, "urn:svc:a", "urn:svc:legacy")]["last_seen"] == "2024-05-01T12:05:00Z"
    run("stops", T0 + 15 * M, pg_url=pg_url)  # window [12:05, 12:15): no legacy calls
    graph = only_tenant(graph_edges(pg_url), t)
    assert graph == expected_edges(t, steady + stopping, T0 + 15 * M)
    assert set(graph) == {(t, "urn:svc:a", "urn:svc:b")}
    assert (t, "urn:svc:legacy") not in graph_vertices(pg_url)  # no orphan vertex left behind
    assert set(relational_edges(pg_url, t)) == {(t, "urn:svc:a", "urn:svc:b")}


def test_older_window_never_regresses_the_graph(pg_url: str) -> None:
    t = tenant_id(pg_url, "order")
    calls = [Call(T0, "urn:svc:old", "urn:svc:gone", 10, 0, 1.0),
             Call(T0 + 10 * M, "urn:svc:new", "urn:svc:db", 20, 2, 2.0),
             Call(T0 + 15 * M, "urn:svc:new", "urn:svc:db", 40, 0, 3.0)]
    write_calls(pg_url, t, calls)
    assert run("order", T0 + 20 * M, pg_url=pg_url).status == "success"
    latest = graph_edges(pg_url)
    ids = graph_edge_ids(pg_url)
    relational = relational_edges(pg_url, t)

    backfill = run("order", T0 + 10 * M, pg_url=pg_url)  # a catch-up/backfill run of an older T
    assert backfill.status == "skipped"
    assert "older window never moves the graph back" in backfill.details["skipped_reason"]
    assert ledger_status(pg_url, t, T0 + 10 * M) == "skipped"
    assert graph_edges(pg_url) == latest and graph_edge_ids(pg_url) == ids
    assert relational_edges(pg_url, t) == relational
    assert only_tenant(latest, t) == expected_edges(t, calls, T0 + 20 * M)

    cleared = run("order", T0 + 20 * M, pg_url=pg_url)  # a clear of the latest T reapplies it
    assert cleared.status == "success" and ledger_status(pg_url, t, T0 + 20 * M) == "success"
    assert graph_edges(pg_url) == latest


def test_graph_equals_sql_truth_exactly(pg_url: str) -> None:
    """Random calls over six buckets, refreshed at every 5-minute T: graph == Python truth == SQL truth."""
    rng = random.Random(20240501)
    t = tenant_id(pg_url, "truth")
    services = [f"urn:svc:s{i:02d}" for i in range(30)] + ["urn:db:postgresql:main", "urn:ext:api.example.com"]
    calls = []
    for b in range(6):
        for src, dst in {(rng.choice(services[:30]), rng.choice(services)) for _ in range(80)}:
            if src == dst:
                continue
            n = rng.choice([0, 1, 7, 100, 2500])
            calls.append(Call(T0 + b * 5 * M, src, dst, n, rng.randint(0, n), rng.choice([None, 0.5, 12.0, 999.9])))
    write_calls(pg_url, t, calls)
    for k in range(2, 8):
        at = T0 + k * 5 * M
        result = run("truth", at, pg_url=pg_url)
        graph = only_tenant(graph_edges(pg_url), t)
        truth = sql_truth(pg_url, t, at)
        assert graph == truth == expected_edges(t, calls, at), f"T={at}"
        assert relational_edges(pg_url, t) == truth
        assert result.rows_out == len(truth)
        vertices = [v for v in graph_vertices(pg_url) if v[0] == t]
        assert len(vertices) == len(set(vertices)) == len({u for _, s, d in truth for u in (s, d)})
    assert 0 < len(truth) < len({(c.src, c.dst) for c in calls})  # the scenario really churns


def test_two_tenants_are_isolated(pg_url: str) -> None:
    a, b = tenant_id(pg_url, "iso-a"), tenant_id(pg_url, "iso-b")
    same_urns = [("urn:svc:front", "urn:svc:back"), ("urn:svc:back", "urn:db:redis:cache")]
    calls_a = [Call(T0, s, d, 10, 1, 5.0) for s, d in same_urns]
    calls_b = [Call(T0, s, d, 70, 0, 6.0) for s, d in same_urns] + [Call(T0, "urn:svc:b-only", "urn:svc:back", 1)]
    write_calls(pg_url, a, calls_a)
    write_calls(pg_url, b, calls_b)
    run("iso-a", T0 + 10 * M, pg_url=pg_url)
    assert only_tenant(graph_edges(pg_url), b) == {}
    run("iso-b", T0 + 10 * M, pg_url=pg_url)
    b_ids = {k: v for k, v in graph_edge_ids(pg_url).items() if k[0] == b}
    assert only_tenant(graph_edges(pg_url), a) == expected_edges(a, calls_a, T0 + 10 * M)
    assert only_tenant(graph_edges(pg_url), b) == expected_edges(b, calls_b, T0 + 10 * M)
    assert {(t, u) for t, u in graph_vertices(pg_url) if u == "urn:svc:back"} >= {(a, "urn:svc:back"),
                                                                                   (b, "urn:svc:back")}

    run("iso-a", T0 + 20 * M, pg_url=pg_url)  # tenant a goes quiet: its graph empties, b's stays
    assert only_tenant(graph_edges(pg_url), a) == {}
    assert not [v for v in graph_vertices(pg_url) if v[0] == a]
    assert {k: v for k, v in graph_edge_ids(pg_url).items() if k[0] == b} == b_ids
    assert only_tenant(graph_edges(pg_url), b) == expected_edges(b, calls_b, T0 + 10 * M)


MALICIOUS = [
    "urn:svc:o'brien",
    'urn:svc:"quoted"',
    "urn:svc:$$ drop $$",
    "urn:svc:back\\slash\\\\",
    "urn:svc:ünïcødé-服务-🚀",
    "urn:svc:x'}) DETACH DELETE n //",
    "urn:svc:%(tenant_id)s %s $1",
    "urn:svc:new\nline\ttab",
]


def test_malicious_urns_stay_data(pg_url: str) -> None:
    t = tenant_id(pg_url, "evil'; --")
    calls = [Call(T0 + 5 * M, src, dst, 5 + i, i % 2, 1.0 + i)
             for i, (src, dst) in enumerate(zip(MALICIOUS, MALICIOUS[1:] + MALICIOUS[:1], strict=True))]
    write_calls(pg_url, t, calls)
    others = {k: v for k, v in graph_edges(pg_url).items() if k[0] != t}
    result = run("evil'; --", T0 + 10 * M, pg_url=pg_url)
    assert result.status == "success"
    graph = graph_edges(pg_url)
    assert only_tenant(graph, t) == expected_edges(t, calls, T0 + 10 * M) == sql_truth(pg_url, t, T0 + 10 * M)
    assert {u for tt, u in graph_vertices(pg_url) if tt == t} == set(MALICIOUS)
    assert {k: v for k, v in graph.items() if k[0] != t} == others


def test_concurrent_refreshes_of_one_tenant_end_on_the_newest(pg_url: str) -> None:
    t = tenant_id(pg_url, "race")
    calls = [Call(T0 + k * 5 * M, f"urn:svc:r{k}", "urn:svc:sink", 10 * (k + 1), 0, 1.0) for k in range(6)]
    write_calls(pg_url, t, calls)
    ats = [T0 + k * 5 * M for k in range(2, 7)]
    results: dict[datetime, str] = {}

    def refresh(at: datetime) -> None:
        results[at] = run("race", at, pg_url=pg_url).status

    threads = [threading.Thread(target=refresh, args=(at,)) for at in ats for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results[ats[-1]] == "success"
    assert set(results.values()) <= {"success", "skipped"}
    assert only_tenant(graph_edges(pg_url), t) == expected_edges(t, calls, ats[-1])
    vertices = [v for v in graph_vertices(pg_url) if v[0] == t]
    assert len(vertices) == len(set(vertices))


def test_duplicate_vertex_made_by_hand_is_merged_away(pg_url: str) -> None:
    t = tenant_id(pg_url, "dupes")
    calls = [Call(T0, "urn:svc:p", "urn:svc:q", 3, 0, 1.0)]
    write_calls(pg_url, t, calls)
    run("dupes", T0 + 10 * M, pg_url=pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:  # a user's stray Cypher CREATE
        cur.execute("LOAD 'age'")
        cur.execute("SET search_path = public, ag_catalog")
        cur.execute("PREPARE dup(agtype) AS SELECT * FROM cypher('obs_graph', $$ CREATE (:Resource "
                    "{urn: 'urn:svc:q', tenant_id: $t}) $$, $1) AS (r agtype)")
        cur.execute("EXECUTE dup(%s)", (f'{{"t": {t}}}',))
    assert graph_vertices(pg_url).count((t, "urn:svc:q")) == 2
    run("dupes", T0 + 10 * M, pg_url=pg_url)
    assert graph_vertices(pg_url).count((t, "urn:svc:q")) == 1
    assert only_tenant(graph_edges(pg_url), t) == expected_edges(t, calls, T0 + 10 * M)


def test_a_future_window_end_is_refused_and_a_stored_one_never_blocks(pg_url: str) -> None:
    from airflow_obs_provider.engine.age_graph import JOB, active_window_ending, refresh_active_graph
    from airflow_obs_provider.engine.ledger import run_window
    from airflow_obs_provider.engine.window import WindowError

    t = tenant_id(pg_url, "future")
    calls = [Call(T0, "urn:svc:web", "urn:svc:api", 300, 3, 40.0)]
    write_calls(pg_url, t, calls)
    far = datetime(2099, 1, 1, tzinfo=UTC)
    with pytest.raises(WindowError, match="in the future"):
        run("future", far, pg_url=pg_url)
    assert ledger_status(pg_url, t, far) is None
    # what a version that accepted any --at left behind: an empty graph "applied" at 2099
    run_window(JOB, "future", active_window_ending(far), refresh_active_graph, pg_url=pg_url)
    normal = run("future", T0 + 10 * M, pg_url=pg_url)
    assert normal.status == "success"
    assert normal.details["ignored_future_applied_at"].startswith("2099-01-01")
    assert only_tenant(graph_edges(pg_url), t) == expected_edges(t, calls, T0 + 10 * M)
