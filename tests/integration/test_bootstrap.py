"""sql/bootstrap.sql on the real dev-stack Postgres: tables, keys, indexes, graph, RLS, idempotence, degraded paths."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from psycopg2 import sql
from support.databases import create_database, drop_database

from airflow_obs_provider.engine.bootstrap import OPTIONAL_EXTENSIONS, bootstrap

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# CONTRACT (design §3): table -> (key columns, columns that must exist)
CONTRACT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dim_tenant": (("id",), ("code", "name", "created_at")),
    "dim_resource": (("id",), ("tenant_id", "urn", "type", "labels", "first_seen", "last_seen")),
    "oo_locator": (("id",), ("tenant_id", "stream_type", "stream", "window_from", "window_to", "sql_hint",
                             "ui_url", "object_keys", "record_count", "created_at")),
    "metric_1m": (("bucket", "tenant_id", "resource_id", "metric"),
                  ("kind", "avg", "max", "p95", "min", "count", "sum", "locator_id")),
    "service_call_5m": (("bucket", "tenant_id", "src_id", "dst_id"),
                        ("calls", "errors", "rps", "err_rate", "p50_ms", "p95_ms", "locator_id")),
    "log_pattern": (("tenant_id", "fingerprint"), ("template", "severity", "first_seen", "last_seen", "sample")),
    "log_pattern_alias": (("tenant_id", "old_fingerprint"), ("new_fingerprint", "created_at")),
    "log_miner_state": (("tenant_id",), ("config_version", "state", "updated_at")),
    "log_pattern_5m": (("bucket", "tenant_id", "resource_id", "fingerprint"), ("count", "count_error", "locator_id")),
    "topo_edge_time": (("id",), ("tenant_id", "src_id", "dst_id", "edge_type", "source", "valid", "props")),
    "kb_doc": (("id",), ("tenant_id", "title", "body", "source_uri", "created_at", "updated_at")),
    "kb_chunk": (("id",), ("tenant_id", "doc_id", "chunk_no", "text", "embedding")),
    "event_envelope": (("id",), ("tenant_id", "kind", "time", "payload")),
    "evidence_link": (("id",), ("tenant_id", "event_id", "dim", "ref_pg_table", "ref_pg_key", "ref_pg_hash",
                                "ref_oo")),
    "etl_job_run": (("id",), ("job", "tenant_id", "window_from", "window_to", "status", "attempts", "rows_in",
                              "rows_out", "started_at", "finished_at", "duration_ms", "error", "dag_id", "run_id",
                              "try_number", "details", "updated_at")),
}
UNIQUE_KEYS = {
    "dim_tenant": ("code",),
    "dim_resource": ("tenant_id", "urn"),
    "oo_locator": ("tenant_id", "stream_type", "stream", "window_from", "window_to"),
    "etl_job_run": ("job", "tenant_id", "window_from", "window_to"),
}


def query(url: str, text: str | sql.Composable, params: tuple = (), *, autocommit: bool = False) -> list[tuple]:
    conn = psycopg2.connect(url)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(text, params or None)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))


@pytest.fixture(scope="module")
def owner_role(pg_server_url: str) -> Iterator[str]:
    """A plain login role (no superuser, no CREATEROLE): what a managed-Postgres customer gets."""
    role = f"obs_owner_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(pg_server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(role)))
    yield role
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    conn.close()


def owned_database(server_url: str, owner: str, prefix: str) -> str:
    url = create_database(server_url, prefix)
    name = urlsplit(url).path.lstrip("/")
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))
    conn.close()
    return url


def catalog_fingerprint(url: str) -> str:
    """A hash of everything bootstrap creates: relations, columns, constraints, indexes, policies,
    functions, extensions, RLS flags, AGE labels, hypertables and the seeded rows."""
    parts = [
        query(url, """SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                        AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2"""),
        query(url, """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                             pg_get_expr(d.adbin, d.adrelid)
                      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2"""),
        query(url, """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""),
        query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
        query(url, """SELECT polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid),
                             pg_get_expr(polwithcheck, polrelid) FROM pg_policy ORDER BY 1, 2"""),
        query(url, """SELECT proname, md5(prosrc) FROM pg_proc
                      WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'obs%' ORDER BY 1"""),
        query(url, "SELECT extname, extversion FROM pg_extension ORDER BY 1"),
        query(url, "SELECT * FROM dim_tenant ORDER BY id"),
        query(url, "SELECT * FROM obs_schema_version ORDER BY version"),
    ]
    if query(url, "SELECT 1 FROM pg_extension WHERE extname = 'age'"):
        parts.append(query(url, """SELECT g.name, l.name, l.kind FROM ag_catalog.ag_label l
                                   JOIN ag_catalog.ag_graph g ON g.graphid = l.graph ORDER BY 1, 2"""))
    if query(url, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
        parts.append(query(url, """SELECT hypertable_name, column_name, time_interval::text
                                   FROM timescaledb_information.dimensions ORDER BY 1"""))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def row_counts(url: str) -> dict[str, int]:
    return {t: query(url, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))[0][0]
            for t in [*CONTRACT, "obs_schema_version"]}


def column_names(url: str, table: str) -> set[str]:
    rows = query(url, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                      "AND table_name = %s", (table,))
    return {r[0] for r in rows}


def constraint_columns(url: str, table: str, contype: str) -> list[tuple[str, ...]]:
    rows = query(url, """SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c
                         CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                         WHERE c.conrelid = %s::regclass AND c.contype = %s GROUP BY c.oid""", (table, contype))
    return [tuple(r[0]) for r in rows]


def index_defs(url: str) -> dict[str, str]:
    return dict(query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))


# --- full server (superuser) --------------------------------------------------


def test_every_contract_table_has_its_columns_and_keys(pg_url: str) -> None:
    for table, (pk, columns) in CONTRACT.items():
        present = column_names(pg_url, table)
        assert present, f"{table} missing"
        assert set(pk) | set(columns) <= present, f"{table} lacks {set(pk) | set(columns) - present}"
        assert constraint_columns(pg_url, table, "p") == [pk], table
    for table, key in UNIQUE_KEYS.items():
        assert key in constraint_columns(pg_url, table, "u"), table


def test_every_row_carries_a_tenant_foreign_key(pg_url: str) -> None:
    for table in CONTRACT:
        if table == "dim_tenant":
            continue
        fks = query(pg_url, """SELECT confrelid::regclass::text FROM pg_constraint
                               WHERE conrelid = %s::regclass AND contype = 'f'
                                 AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                                     WHERE attrelid = %s::regclass AND attname = 'tenant_id')]""",
                    (table, table))
        assert ("dim_tenant",) in fks, table


def test_every_table_with_a_tenant_column_has_the_tenant_policy(pg_url: str) -> None:
    """RLS covers every tenant-scoped table bootstrap creates, not only the contract list."""
    scoped = {t for (t,) in query(pg_url, """SELECT c.relname FROM pg_class c
                                              JOIN pg_namespace n ON n.oid = c.relnamespace
                                              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                                             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')""")}
    policed = {t for (t,) in query(pg_url, """SELECT polrelid::regclass::text FROM pg_policy
                                               WHERE polname = 'obs_tenant_isolation'""")}
    assert {"active_call_edge", "age_refresh_state", "etl_circuit_breaker"} <= scoped
    # obs_tenant_reader binds reader roles to tenants: access control, readable by the owner only.
    assert scoped - policed == {"obs_tenant_reader"}
    reader_views = {t for (t,) in query(pg_url, "SELECT viewname FROM pg_views WHERE schemaname = 'obs_reader'")}
    assert policed <= reader_views, "every tenant-scoped table has a tenant readers' view"


def test_times_are_timestamptz_and_latencies_double(pg_url: str) -> None:
    rows = query(pg_url, """SELECT table_name, column_name, data_type FROM information_schema.columns
                            WHERE table_schema = 'public' AND (column_name IN ('bucket', 'window_from', 'window_to',
                              'first_seen', 'last_seen', 'time', 'started_at', 'finished_at')
                              OR column_name LIKE '%%\\_ms')""")
    assert rows
    for table, column, data_type in rows:
        expected = "double precision" if column.endswith("_ms") else "timestamp with time zone"
        assert data_type == expected, (table, column)


def test_fact_tables_are_hypertables_on_bucket(pg_url: str) -> None:
    rows = query(pg_url, "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions")
    assert sorted(rows) == [("log_pattern_5m", "bucket"), ("metric_1m", "bucket"), ("service_call_5m", "bucket")]


def test_index_kinds(pg_url: str) -> None:
    defs = index_defs(pg_url)
    assert "USING gin (labels)" in defs["dim_resource_labels_gin"]
    assert "USING gin (template gin_trgm_ops)" in defs["log_pattern_template_trgm"]
    assert "USING hnsw (embedding vector_cosine_ops)" in defs["kb_chunk_embedding_hnsw"]
    assert "(\"time\" DESC)" in defs["event_envelope_time_idx"]
    evidence = defs["evidence_link_ref_key"]
    assert evidence.startswith("CREATE UNIQUE INDEX") and "COALESCE(ref_oo, (0)::bigint)" in evidence
    exclude = query(pg_url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
                    ("topo_edge_time_no_overlap",))[0][0]
    assert exclude.startswith("EXCLUDE USING gist") and "valid WITH &&" in exclude
    assert query(pg_url, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'kb_chunk'::regclass AND attname = 'embedding'") == [("vector(384)",)]


def test_age_graph_has_resource_and_calls_labels(pg_url: str) -> None:
    labels = query(pg_url, """SELECT l.name, l.kind FROM ag_catalog.ag_label l
                              JOIN ag_catalog.ag_graph g ON g.graphid = l.graph WHERE g.name = 'obs_graph'""")
    assert {("Resource", "v"), ("CALLS", "e")} <= set(labels)


def test_default_tenant_and_schema_version_are_seeded(pg_url: str) -> None:
    assert query(pg_url, "SELECT code FROM dim_tenant") == [("default",)]
    assert query(pg_url, "SELECT max(version) FROM obs_schema_version")[0][0] >= 1


def test_second_bootstrap_changes_nothing(pg_url: str) -> None:
    before, counts = catalog_fingerprint(pg_url), row_counts(pg_url)
    report = bootstrap(pg_url)
    assert catalog_fingerprint(pg_url) == before
    assert row_counts(pg_url) == counts
    assert not report.skipped_extensions and all(report.features.values()), report


def _tenant_and_resources(cur, code: str) -> tuple[int, int, int]:
    cur.execute("INSERT INTO dim_tenant (code) VALUES (%s) ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code "
                "RETURNING id", (code,))
    tenant = cur.fetchone()[0]
    ids = []
    for urn in ("urn:svc:a", "urn:svc:b"):
        cur.execute("INSERT INTO dim_resource (tenant_id, urn, type) VALUES (%s, %s, 'svc') "
                    "ON CONFLICT (tenant_id, urn) DO UPDATE SET type = EXCLUDED.type RETURNING id", (tenant, urn))
        ids.append(cur.fetchone()[0])
    return tenant, ids[0], ids[1]


def test_exclude_constraint_rejects_an_overlapping_interval(pg_url: str) -> None:
    insert = ("INSERT INTO topo_edge_time (tenant_id, src_id, dst_id, edge_type, source, valid) "
              "VALUES (%s, %s, %s, 'depends_on', 'terraform', tstzrange(%s, %s))")
    t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(4)]
    conn = psycopg2.connect(pg_url)
    try:
        cur = conn.cursor()
        tenant, a, b = _tenant_and_resources(cur, "excl")
        cur.execute(insert, (tenant, a, b, t[0], t[2]))
        cur.execute(insert, (tenant, a, b, t[2], None))  # adjacent [t2, inf): allowed
        cur.execute(insert, (tenant, b, a, t[1], t[3]))  # the reverse edge is another edge: allowed
        conn.commit()
        with pytest.raises(psycopg2.errors.ExclusionViolation):
            cur.execute(insert, (tenant, a, b, t[1], t[3]))  # overlaps both stored intervals of a->b
        conn.rollback()
    finally:
        conn.close()
    assert query(pg_url, "SELECT count(*) FROM topo_edge_time WHERE tenant_id = %s", (tenant,)) == [(3,)]


def test_evidence_link_treats_missing_oo_locator_as_one_value(pg_url: str) -> None:
    conn = psycopg2.connect(pg_url)
    try:
        cur = conn.cursor()
        tenant, _, _ = _tenant_and_resources(cur, "evid")
        cur.execute("INSERT INTO event_envelope (tenant_id, kind, time) VALUES (%s, 'alert', now()) RETURNING id",
                    (tenant,))
        event = cur.fetchone()[0]
        link = "INSERT INTO evidence_link (tenant_id, event_id, dim, ref_pg_table, ref_pg_hash) VALUES (%s, %s, 'metric', 'metric_1m', 'h1')"
        cur.execute(link, (tenant, event))
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute(link, (tenant, event))
    finally:
        conn.close()


def test_rls_scopes_a_session_to_its_tenant(pg_url: str, owner_role: str) -> None:
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    cur = conn.cursor()
    tenant_a, res_a, _ = _tenant_and_resources(cur, "rls_a")
    tenant_b, res_b, _ = _tenant_and_resources(cur, "rls_b")
    cur.execute(sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {}").format(
        sql.Identifier(owner_role)))
    for tenant, res in ((tenant_a, res_a), (tenant_b, res_b)):
        cur.execute("INSERT INTO metric_1m (bucket, tenant_id, resource_id, metric, avg) "
                    "VALUES ('2026-01-01T00:00Z', %s, %s, 'cpu', 1)", (tenant, res))
    reader = psycopg2.connect(as_role(pg_url, owner_role))
    reader.autocommit = True  # no open transaction may block obs_enable_rls()'s ALTER TABLE
    rcur = reader.cursor()
    try:
        rcur.execute("SELECT set_config('obs.tenant_id', %s, false)", (str(tenant_a),))
        rcur.execute("SELECT count(*) FROM metric_1m WHERE tenant_id = %s", (tenant_b,))
        assert rcur.fetchone()[0] == 1, "RLS is off until an operator enables it"
        cur.execute("SELECT obs_enable_rls()")
        rcur.execute("SELECT DISTINCT tenant_id FROM metric_1m")
        assert rcur.fetchall() == [(tenant_a,)]
        rcur.execute("SELECT id FROM dim_tenant")
        assert rcur.fetchall() == [(tenant_a,)]
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            rcur.execute("INSERT INTO dim_resource (tenant_id, urn) VALUES (%s, 'urn:svc:x')", (tenant_b,))
        rcur.execute("SELECT set_config('obs.tenant_id', '', false)")
        rcur.execute("SELECT count(*) FROM metric_1m")
        assert rcur.fetchone()[0] == 0, "an unscoped session sees nothing"
        cur.execute("SELECT obs_disable_rls()")
        rcur.execute("SELECT count(*) FROM metric_1m")
        assert rcur.fetchone()[0] == 2
    finally:
        cur.execute("SELECT obs_disable_rls()")
        cur.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(sql.Identifier(owner_role)))
        reader.close()
        conn.close()


def test_cli_bootstrap_prints_the_report(pg_url: str) -> None:
    out = subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", "bootstrap", "--pg-url", pg_url, "--json"],
                         capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ})
    report = json.loads(out.stdout)
    assert report["schema_version"] >= 1 and report["features"]["hypertables"] is True


# --- degraded paths -----------------------------------------------------------


def test_non_superuser_owner_gets_what_it_may_create_and_a_report_of_the_rest(
        pg_server_url: str, owner_role: str) -> None:
    """Like a managed-Postgres user: untrusted extensions (age, vector) cannot be created by the DB owner."""
    url = owned_database(pg_server_url, owner_role, "t_boot_owner")
    try:
        owner_url = as_role(url, owner_role)
        report = bootstrap(owner_url)
        trusted = dict(query(pg_server_url, "SELECT name, bool_or(trusted) FROM pg_available_extension_versions "
                                            "WHERE name = ANY(%s) GROUP BY name", (list(OPTIONAL_EXTENSIONS),)))
        assert trusted["age"] is False and trusted["vector"] is False  # true of the packaged builds we run
        expected_skipped = {name for name, ok in trusted.items() if not ok}
        assert set(report.skipped_extensions) == expected_skipped
        assert all("not a superuser" in reason for reason in report.skipped_extensions.values())
        assert set(report.extensions) == set(OPTIONAL_EXTENSIONS) - expected_skipped
        assert report.features["age_graph"] is False and report.features["hnsw_index"] is False
        assert report.features["hypertables"] is ("timescaledb" in report.extensions)
        assert set(report.skipped_features) == {"age_graph", "hnsw_index"}
        for table in CONTRACT:
            assert column_names(owner_url, table), table
        assert query(owner_url, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                "WHERE attrelid = 'kb_chunk'::regclass AND attname = 'embedding'") == [("real[]",)]
        before, counts = catalog_fingerprint(owner_url), row_counts(owner_url)
        bootstrap(owner_url)
        assert (catalog_fingerprint(owner_url), row_counts(owner_url)) == (before, counts)
    finally:
        drop_database(pg_server_url, url)


def test_owner_bootstrap_uses_extensions_a_superuser_installed_first(pg_server_url: str, owner_role: str) -> None:
    url = owned_database(pg_server_url, owner_role, "t_boot_preinstalled")
    try:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            for ext in OPTIONAL_EXTENSIONS:
                cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA ag_catalog TO {}").format(sql.Identifier(owner_role)))
        conn.close()
        report = bootstrap(as_role(url, owner_role))
        assert not report.skipped_extensions
        assert report.features["hypertables"] and report.features["hnsw_index"]
        assert report.features["vector_embedding"]
        # AGE's catalog belongs to the superuser: the owner either builds the graph or says why not.
        assert report.features["age_graph"] or "age_graph" in report.skipped_features
    finally:
        drop_database(pg_server_url, url)


@pytest.fixture
def bare_db_url(pg_server_url: str) -> Iterator[str]:
    url = create_database(pg_server_url, "t_boot_bare")
    yield url
    drop_database(pg_server_url, url)


def test_without_optional_extensions_then_upgraded_when_they_arrive(bare_db_url: str) -> None:
    report = bootstrap(bare_db_url, skip_extensions=OPTIONAL_EXTENSIONS)
    assert report.extensions == {}
    assert set(report.skipped_extensions) == set(OPTIONAL_EXTENSIONS)
    assert not any(v for k, v in report.features.items() if k != "rls_policies")
    assert set(report.skipped_features) == {"hypertables", "age_graph", "hnsw_index", "trigram_index",
                                            "exclude_constraint"}
    for table in CONTRACT:
        assert column_names(bare_db_url, table), table
    tenant = query(bare_db_url, "SELECT id FROM dim_tenant WHERE code = 'default'")[0][0]
    conn = psycopg2.connect(bare_db_url)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO kb_doc (tenant_id, title) VALUES (%s, 'runbook') RETURNING id", (tenant,))
        doc = cur.fetchone()[0]
        cur.execute("INSERT INTO kb_chunk (tenant_id, doc_id, chunk_no, text, embedding) VALUES (%s, %s, 0, 'x', %s)",
                    (tenant, doc, [0.5] * 384))
        cur.execute("INSERT INTO dim_resource (tenant_id, urn) VALUES (%s, 'urn:svc:a') RETURNING id", (tenant,))
        res = cur.fetchone()[0]
        cur.execute("INSERT INTO metric_1m (bucket, tenant_id, resource_id, metric, avg) "
                    "VALUES ('2026-01-01T00:00Z', %s, %s, 'cpu', 1)", (tenant, res))
    conn.close()

    upgraded = bootstrap(bare_db_url)
    assert all(upgraded.features.values()), upgraded
    assert query(bare_db_url, "SELECT count(*) FROM metric_1m") == [(1,)]
    assert query(bare_db_url, "SELECT embedding::text FROM kb_chunk")[0][0].startswith("[0.5,0.5")


def test_bootstrap_upgrades_a_ledger_from_before_source_digest(bare_db_url: str) -> None:
    """A database bootstrapped before late-data reconcile gains etl_job_run.source_digest, keeping its rows."""
    bootstrap(bare_db_url)
    # the tenant readers' view of the ledger did not exist then either (bootstrap recreates it)
    query(bare_db_url, "DROP VIEW obs_reader.etl_job_run", autocommit=True)
    query(bare_db_url, "ALTER TABLE etl_job_run DROP COLUMN source_digest", autocommit=True)
    query(bare_db_url, "DELETE FROM obs_schema_version WHERE version >= 2", autocommit=True)
    query(bare_db_url, "INSERT INTO etl_job_run (job, tenant_id, window_from, window_to, status, attempts) "
                       "SELECT 'oo-agg', id, '2026-01-01 10:00Z', '2026-01-01 10:01Z', 'success', 1 "
                       "FROM dim_tenant WHERE code = 'default'", autocommit=True)
    assert "source_digest" not in column_names(bare_db_url, "etl_job_run")
    bootstrap(bare_db_url)
    assert "source_digest" in column_names(bare_db_url, "etl_job_run")
    assert query(bare_db_url, "SELECT status, attempts, source_digest FROM etl_job_run") == [("success", 1, None)]
    assert query(bare_db_url, "SELECT max(version) FROM obs_schema_version")[0][0] == 2
