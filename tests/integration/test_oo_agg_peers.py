"""Virtual nodes and service names from spans written by the semantic conventions, read from S3.

Spans of every kind of peer, under old attribute names, current ones and both at once, in
separate files of one stream (so a column is absent from some files), with empty service
names, missing span kinds, calls split across bucket edges and many calls per edge, are
written in OpenObserve's bucket layout on the real S3 server and aggregated by ``obs-etl run
oo-agg``. The result is compared with the independent oracle, and with the URNs the README's
precedence table gives (written by hand in ``support.semconv_spans``).

Before the run the database holds what an earlier release wrote for 09:00 (resources named by
the old rules, with a call each), to check how those resources carry over.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing
from pathlib import Path

import psycopg2
import pyarrow.parquet as pq
import pytest
from support import oracle
from support.oo_agg_db import assert_rows_equal, call_rows, dump_tables, write_config
from support.semconv_spans import BUCKET, MINUTE, PEER_CASES, SpanWriter, spread

from airflow_obs_provider.cli import main
from airflow_obs_provider.engine.oo.storage import Storage, s3_filesystem
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

RUN_FROM, RUN_TO = "2024-05-01T10:01:00Z", "2024-05-01T10:11:00Z"
B0 = to_us(parse_time("2024-05-01T10:00:00Z"))
OLD_BUCKET = to_us(parse_time("2024-05-01T09:00:00Z"))
UNKNOWN = "urn:svc:unknown_service"

# resources an earlier release wrote, by URN -> type; each also gets a 09:00 call from checkout
LEGACY = {"urn:ext:cache-1": "ext", "urn:ext:mysql-1": "ext", "urn:db:postgresql:legacy_orders": "db",
          "urn:ext:broker-1": "ext", "urn:ext:mq-1": "ext", "urn:svc:billingdb": "svc", "urn:ext:search-1": "ext"}


def _write_spans(w: SpanWriter) -> Counter[tuple[str, str]]:
    """Every fixture span; returns the calls each (src, dst) edge must count over both buckets."""
    want: Counter[tuple[str, str]] = Counter()
    for n, case in enumerate(PEER_CASES):
        # old-only and current-only spellings in files of their own: columns missing per file
        file = "mixed" if "both" in case.name else f"case{n % 3}"
        for i, ts in enumerate(spread(B0, case.calls, salt=n)):
            w.span(file, ts, case.caller, case.kind, trace=w.trace(), attributes=case.attributes,
                   status=w.status(i))
        want[(f"urn:svc:{case.caller}", case.expected)] += case.calls

    # client -> server pairs, some across the bucket edge at 10:05 and the end at 10:10
    for i, ts in enumerate(spread(B0, 21, salt=99) + [B0 + BUCKET - 1, B0 + 2 * BUCKET - 3]):
        t = w.trace()
        c = w.span("pairs", ts, "frontend", "3", trace=t, attributes={"peer.service": "ignored-partnered"},
                   status=w.status(i))
        w.span("pairs", ts + 900_000 if ts % BUCKET > BUCKET - MINUTE else ts + 300, "checkout", "2", trace=t,
               parent=c, status=w.status(i + 1))
    want[("urn:svc:frontend", "urn:svc:checkout")] += 23
    # a caller starting exactly on the 10:05 edge belongs to the second bucket (still counted)
    t = w.trace()
    c = w.span("pairs", B0 + BUCKET, "frontend", "3", trace=t)
    w.span("pairs", B0 + BUCKET + 10, "checkout", "2", trace=t, parent=c)
    want[("urn:svc:frontend", "urn:svc:checkout")] += 1

    # point 2: a callee with an empty or missing service keeps its call (unknown_service);
    # the caller's peer.service does not name it, and no virtual edge is added
    for i, (ts, callee) in enumerate(zip(spread(B0, 8, salt=7), ["", None] * 4, strict=True)):
        t = w.trace()
        c = w.span("noservice", ts, "checkout", "3", trace=t, attributes={"peer.service": "inventory"},
                   status=w.status(i))
        w.span("noservice", ts + 50, callee, "2", trace=t, parent=c)
    want[("urn:svc:checkout", UNKNOWN)] += 8
    # ... and so does a caller without a service, both to a service and to a virtual node
    for ts in spread(B0, 5, salt=8):
        t = w.trace()
        c = w.span("noservice", ts, None, "3", trace=t)
        w.span("noservice", ts + 50, "checkout", "2", trace=t, parent=c)
        w.span("noservice", ts + 60, "", "3", trace=w.trace(), attributes={"db.system.name": "sqlite"})
    want[(UNKNOWN, "urn:svc:checkout")] += 5
    want[(UNKNOWN, "urn:db:sqlite:sqlite")] += 5

    # span.kind missing: parent -> child across services counts; a kindless span with
    # database attributes is not a client and names no peer
    for ts in spread(B0, 6, salt=9):
        t = w.trace()
        p = w.span("nokind", ts, "web", None, trace=t, attributes={"db.system.name": "postgresql"})
        w.span("nokind", ts + 20, "auth", None, trace=t, parent=p)
    want[("urn:svc:web", "urn:svc:auth")] += 6

    # producer -> consumer: the consumer edge and the queue node
    for ts in spread(B0, 7, salt=10):
        t = w.trace()
        p = w.span("queue", ts, "checkout", "4", trace=t,
                   attributes={"messaging.system": "kafka", "messaging.destination.name": "orders-topic"})
        w.span("queue", ts + 5_000, "fulfilment", "5", trace=t, parent=p)
    want[("urn:svc:checkout", "urn:svc:fulfilment")] += 7
    want[("urn:svc:checkout", "urn:queue:kafka:orders-topic")] += 7
    return want


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, s3_env: dict[str, str], s3_bucket: str
         ) -> tuple[Path, Counter[tuple[str, str]]]:
    root = tmp_path_factory.mktemp("oo_peers")
    w = SpanWriter()
    want = _write_spans(w)
    secrets = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                            s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                            s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    s3 = Storage.s3(s3_bucket, "oo", s3_filesystem(secrets))
    for name, table in w.tables():
        key = f"files/default/traces/default/2024/05/01/10/{name}.parquet"
        s3.write_parquet(key, table, row_group_size=10_000)
        # the same file beside the config, for the oracle (which reads plain files)
        (root / "mirror" / key).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "mirror" / key)
    write_config(root, f"{{kind: s3, bucket: {s3_bucket}, prefix: oo, org: default}}")
    return root, want


def _seed_legacy(pg_url: str) -> dict[str, int]:
    """What an earlier release left: old-named resources, each with a 09:00 call from checkout."""
    with closing(psycopg2.connect(pg_url)) as conn, conn, conn.cursor() as cur:
        cur.execute("INSERT INTO dim_tenant (code, name) VALUES ('acme', 'acme') ON CONFLICT (code) DO NOTHING "
                    "RETURNING id")
        tid = cur.fetchone()[0]
        ids = {}
        for urn, rtype in [("urn:svc:checkout", "svc"), *LEGACY.items()]:
            cur.execute("INSERT INTO dim_resource (tenant_id, urn, type, first_seen, last_seen) "
                        "VALUES (%s, %s, %s, '2024-05-01T09:00Z', '2024-05-01T09:04Z') RETURNING id",
                        (tid, urn, rtype))
            ids[urn] = cur.fetchone()[0]
        for urn in LEGACY:
            cur.execute("INSERT INTO service_call_5m (bucket, tenant_id, src_id, dst_id, calls, errors, rps, err_rate, "
                        "p50_ms, p95_ms) VALUES ('2024-05-01T09:00Z', %s, %s, %s, 3, 0, 0.01, 0, 1.5, 2.5)",
                        (tid, ids["urn:svc:checkout"], ids[urn]))
    return ids


def _run(cfg: Path, pg_url: str) -> None:
    assert main(["run", "oo-agg", "--config", str(cfg), "--tenant", "acme", "--from", RUN_FROM, "--to", RUN_TO,
                 "--pg-url", pg_url]) == 0


@pytest.fixture(scope="module")
def ran(data: tuple[Path, Counter[tuple[str, str]]], pg_url: str) -> tuple[str, dict[str, int]]:
    legacy_ids = _seed_legacy(pg_url)
    _run(data[0] / "etl.yaml", pg_url)
    return pg_url, legacy_ids


def _new_calls(pg_url: str) -> dict[tuple[int, str, str], dict]:  # type: ignore[type-arg]
    return {k: v for k, v in call_rows(pg_url, "acme").items() if k[0] >= B0}


def _edges(pg_url: str) -> Counter[tuple[str, str]]:
    got: Counter[tuple[str, str]] = Counter()
    for (_b, src, dst), row in _new_calls(pg_url).items():
        got[(src, dst)] += row["calls"]
    return got


def _resources(pg_url: str) -> dict[str, tuple[int, str]]:
    with closing(psycopg2.connect(pg_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT r.urn, r.id, r.type FROM dim_resource r JOIN dim_tenant t ON t.id = r.tenant_id "
                    "WHERE t.code = 'acme'")
        return {urn: (rid, rtype) for urn, rid, rtype in cur.fetchall()}


def test_service_call_5m_equals_the_oracle_in_every_column(ran: tuple[str, dict[str, int]],
                                                         data: tuple[Path, Counter[tuple[str, str]]]) -> None:
    want = oracle.call_rows(data[0] / "mirror", [B0, B0 + BUCKET])
    got = _new_calls(ran[0])
    assert len(want) >= 40
    assert max(v["calls"] for v in want.values()) >= 10  # p50/p95 interpolate between many latencies
    assert_rows_equal(got, want)


def test_every_edge_is_named_by_the_precedence_table_and_counts_every_call(
        ran: tuple[str, dict[str, int]], data: tuple[Path, Counter[tuple[str, str]]]) -> None:
    assert _edges(ran[0]) == data[1]


def test_both_buckets_and_the_bucket_edge_are_covered(ran: tuple[str, dict[str, int]]) -> None:
    rows = _new_calls(ran[0])
    pair = {b: r["calls"] for (b, s, d), r in rows.items() if (s, d) == ("urn:svc:frontend", "urn:svc:checkout")}
    assert set(pair) == {B0, B0 + BUCKET} and sum(pair.values()) == 24


@pytest.mark.parametrize(("src", "dst"), [
    ("urn:svc:checkout", "urn:db:redis:cache-1"),  # point 1: db.system.name alone is read
    ("urn:svc:checkout", "urn:db:mysql:mysql-1"),  # point 3: system + host, no name: a database
    ("urn:svc:reports", "urn:db:postgresql:orders"),  # point 4: db.namespace wins over db.name
    ("urn:svc:checkout", "urn:db:postgresql:billing"),  # point 5: peer.service does not rename a database
    ("urn:svc:checkout", UNKNOWN),  # point 2: an empty callee service keeps the call
])
def test_each_point_of_the_issue(ran: tuple[str, dict[str, int]], src: str, dst: str) -> None:
    edges = _edges(ran[0])
    assert edges[(src, dst)] > 0, sorted(edges)


def test_no_peer_is_named_twice_or_by_a_lower_rule(ran: tuple[str, dict[str, int]]) -> None:
    urns = _resources(ran[0])
    for gone in ("urn:ext:pg-1", "urn:ext:cache-1", "urn:ext:mysql-1", "urn:db:postgresql:legacy_orders",
                 "urn:svc:inventory", "urn:svc:old-tax", "urn:ext:old.example.com", "urn:ext:old-host",
                 "urn:ext:10.1.2.3", "urn:db:unknown:orders", "urn:queue:kafka:payments"):
        assert gone not in urns
    assert {urn: t for urn, (_id, t) in urns.items() if urn.startswith("urn:db:")} == {
        urn: "db" for urn in urns if urn.startswith("urn:db:")}
    assert urns["urn:queue:activemq:broker-1"][1] == "queue" and urns[UNKNOWN][1] == "svc"


def test_old_resources_take_their_current_urn_and_keep_their_history(ran: tuple[str, dict[str, int]]) -> None:
    pg_url, legacy_ids = ran
    urns = _resources(pg_url)
    # renamed in place: the same id, so the 09:00 call written under the old name follows
    for old, new in [("urn:ext:cache-1", "urn:db:redis:cache-1"), ("urn:ext:mysql-1", "urn:db:mysql:mysql-1"),
                     ("urn:db:postgresql:legacy_orders", "urn:db:postgresql:orders"),
                     ("urn:ext:broker-1", "urn:queue:activemq:broker-1"), ("urn:ext:mq-1", "urn:queue:rabbitmq:jobs")]:
        assert urns[new] == (legacy_ids[old], new.split(":")[1])
        assert old not in urns
        assert call_rows(pg_url, "acme")[(OLD_BUCKET, "urn:svc:checkout", new)]["calls"] == 3
    # a urn:svc: may be a real service, and search-1 is still called over plain http: both stay
    assert urns["urn:svc:billingdb"][0] == legacy_ids["urn:svc:billingdb"]
    assert urns["urn:ext:search-1"] == (legacy_ids["urn:ext:search-1"], "ext")
    assert urns["urn:db:elasticsearch:search-1"][0] not in legacy_ids.values()


def test_rerun_changes_nothing(ran: tuple[str, dict[str, int]], data: tuple[Path, Counter[tuple[str, str]]]) -> None:
    before = dump_tables(ran[0])
    _run(data[0] / "etl.yaml", ran[0])
    assert dump_tables(ran[0]) == before
