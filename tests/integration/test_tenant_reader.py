"""Tenant-bound readers (issue 12, D15): a role made by obs_create_tenant_reader() sees its tenant only.

Everything runs on the real dev-stack Postgres (TimescaleDB hypertables with chunks, the
AGE graph), and the reader is checked over its own login connection, as a non-superuser:
every relation of every schema (tables, views, chunks in _timescaledb_internal, the AGE
label tables), the functions it may call, ``SET obs.tenant_id`` to the other tenant,
Cypher, and a chunk created after the role was made. The other tenant's rows all carry
the marker ``globexsecret``; none may reach the reader.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql
from support.age_scenarios import Call, write_calls
from support.databases import as_role, create_database, drop_database

from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.db import ensure_tenant
from airflow_obs_provider.jobs import age_refresh

pytestmark = pytest.mark.integration

FOREIGN_MARK = "globexsecret"
OWN_MARK = "acmevisible"
BUCKET = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATE_BUCKET = datetime(2031, 6, 1, tzinfo=UTC)  # a chunk no earlier row needed
TENANT_TABLES = ("dim_tenant", "dim_resource", "oo_locator", "metric_1m", "service_call_5m", "log_pattern",
                 "log_pattern_alias", "log_miner_state", "log_pattern_5m", "topo_edge_time", "kb_doc", "kb_chunk",
                 "event_envelope", "evidence_link", "etl_job_run", "etl_circuit_breaker", "age_refresh_state",
                 "active_call_edge")


def _admin(pg_url: str) -> Any:
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    return conn


def _fill_tenant(pg_url: str, code: str, mark: str) -> int:
    """One row (at least) in every tenant table, each carrying ``mark``; the graph through age-refresh."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        tenant = ensure_tenant(cur, code, f"{mark} tenant", configured=(code,))
    write_calls(pg_url, tenant, [Call(BUCKET, f"urn:svc:{mark}-web", f"urn:svc:{mark}-db", calls=30, errors=1),
                                 Call(BUCKET + timedelta(minutes=5), f"urn:svc:{mark}-web", f"urn:svc:{mark}-db",
                                      calls=10)])
    age_refresh.run(code, BUCKET + timedelta(minutes=10), pg_url=pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM dim_resource WHERE tenant_id = %s ORDER BY id", (tenant,))
        src, dst = (r[0] for r in cur.fetchall()[:2])
        p = {"t": tenant, "src": src, "dst": dst, "m": mark, "b": BUCKET}
        for statement in (
            "INSERT INTO oo_locator (tenant_id, stream_type, stream, window_from, window_to) "
            "VALUES (%(t)s, 'logs', %(m)s, %(b)s, %(b)s + interval '1 minute') RETURNING id",
            "INSERT INTO metric_1m (bucket, tenant_id, resource_id, metric, avg) VALUES (%(b)s, %(t)s, %(src)s, %(m)s, 1)",
            "INSERT INTO log_pattern (tenant_id, fingerprint, template, sample) "
            "VALUES (%(t)s, 'fp-' || %(m)s, %(m)s || ' <NUM>', %(m)s || ' 42')",
            "INSERT INTO log_pattern_alias (tenant_id, old_fingerprint, new_fingerprint) "
            "VALUES (%(t)s, 'old-' || %(m)s, 'fp-' || %(m)s)",
            "INSERT INTO log_miner_state (tenant_id, config_version, state) VALUES (%(t)s, %(m)s, 'x')",
            "INSERT INTO log_pattern_5m (bucket, tenant_id, resource_id, fingerprint, count) "
            "VALUES (%(b)s, %(t)s, %(src)s, 'fp-' || %(m)s, 3)",
            "INSERT INTO topo_edge_time (tenant_id, src_id, dst_id, edge_type, source, valid, props) "
            "VALUES (%(t)s, %(src)s, %(dst)s, 'DEPENDS_ON', 'ansible', tstzrange(%(b)s, NULL), "
            "jsonb_build_object('note', %(m)s))",
            "INSERT INTO kb_doc (tenant_id, title) VALUES (%(t)s, %(m)s || ' runbook')",
            "INSERT INTO kb_chunk (tenant_id, doc_id, chunk_no, text) "
            "SELECT %(t)s, id, 0, %(m)s FROM kb_doc WHERE tenant_id = %(t)s",
            "INSERT INTO event_envelope (tenant_id, kind, time, payload) "
            "VALUES (%(t)s, 'alert', %(b)s, jsonb_build_object('note', %(m)s))",
            "INSERT INTO evidence_link (tenant_id, event_id, dim, ref_pg_table) "
            "SELECT %(t)s, id, %(m)s, 'metric_1m' FROM event_envelope WHERE tenant_id = %(t)s",
            "INSERT INTO etl_circuit_breaker (job, tenant_id, config_hash, last_error) "
            "VALUES ('oo-agg', %(t)s, %(m)s, %(m)s)",
            "UPDATE etl_job_run SET error = %(m)s WHERE tenant_id = %(t)s",
        ):
            cur.execute(statement, p)
    return tenant


@pytest.fixture(scope="module")
def tenants(pg_url: str) -> tuple[int, int]:
    return _fill_tenant(pg_url, "acme", OWN_MARK), _fill_tenant(pg_url, "globex", FOREIGN_MARK)


@pytest.fixture(scope="module")
def reader(pg_url: str, tenants: tuple[int, int]) -> Iterator[str]:
    """A LOGIN role (unique per run: roles are cluster-wide) made the reader of tenant acme."""
    role = f"obs_rd_{uuid.uuid4().hex[:10]}"
    admin = _admin(pg_url)
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (uuid.uuid4().hex,))
        cur.execute("SELECT obs_create_tenant_reader(%s, 'acme')", (role,))
        assert cur.fetchone()[0] == tenants[0]
    yield role
    _drop_role(admin, role)
    admin.close()


def _drop_role(admin: Any, role: str) -> None:
    with admin.cursor() as cur:
        cur.execute("SELECT obs_drop_tenant_reader(%s)", (role,))
        cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def session(pg_url: str, reader: str) -> Iterator[Any]:
    """A fresh login connection as the reader."""
    conn = psycopg2.connect(as_role(pg_url, reader))
    conn.autocommit = True
    yield conn.cursor()
    conn.close()


def _all_relations(pg_url: str) -> list[tuple[str, str]]:
    """Every relation of the database: system catalogs, chunks and the graph's label tables included."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("""SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')  -- sequences hold counters, not rows
                         AND n.nspname <> 'pg_toast'
                       ORDER BY 1, 2""")
        return cur.fetchall()


def _scan_everything(cur: Any, relations: list[tuple[str, str]], own: int) -> dict[str, int]:
    """Read every relation as the reader; return the rows seen per readable relation.

    A relation is either refused (permission denied) or shows no row with the foreign
    marker and no tenant other than ``own``.
    """
    seen = {}
    for schema, rel in relations:
        name = sql.Identifier(schema, rel)
        try:
            cur.execute(sql.SQL("SELECT row_to_json(x)::text FROM {} x").format(name))
        except psycopg2.errors.InsufficientPrivilege:
            continue
        rows = [r[0] for r in cur.fetchall()]
        leaked = [r for r in rows if FOREIGN_MARK in r.lower()]
        assert not leaked, f"{schema}.{rel} shows the other tenant: {leaked[:2]}"
        cur.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "AND column_name = 'tenant_id'", (schema, rel))
        if cur.fetchone():
            cur.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(name))
            assert {r[0] for r in cur.fetchall()} <= {own}, f"{schema}.{rel}"
        seen[f"{schema}.{rel}"] = len(rows)
    return seen


def _chunks(pg_url: str) -> list[str]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks")
        return [r[0] for r in cur.fetchall()]


def test_the_reader_is_a_plain_login_role_with_a_boundary(pg_url: str, reader: str, session: Any) -> None:
    session.execute("SELECT session_user, current_user, rolsuper, rolbypassrls FROM pg_roles "
                    "WHERE rolname = current_user")
    assert session.fetchone() == (reader, reader, False, False)
    with _admin(pg_url) as admin, admin.cursor() as cur:
        cur.execute("SELECT * FROM obs_tenant_reader_problems(%s)", (reader,))
        assert cur.fetchall() == []
        assert len(_chunks(pg_url)) >= 3, "the fact tables are hypertables with chunks"


def test_the_reader_sees_every_table_of_its_tenant_and_nothing_else(
        pg_url: str, tenants: tuple[int, int], session: Any) -> None:
    own, other = tenants
    for table in TENANT_TABLES:
        col = "id" if table == "dim_tenant" else "tenant_id"
        # unqualified: the role's search_path starts with obs_reader
        session.execute(sql.SQL("SELECT {}, count(*) FROM {} GROUP BY 1").format(sql.Identifier(col),
                                                                                 sql.Identifier(table)))
        assert dict(session.fetchall()).keys() == {own}, table
    seen = _scan_everything(session, _all_relations(pg_url), own)
    assert seen["obs_reader.metric_1m"] >= 1 and seen["obs_reader.active_call_edge"] == 1
    assert not [r for r in seen if r.startswith(("public.", "_timescaledb_internal._hyper", "obs_graph."))], seen


def test_setting_obs_tenant_id_changes_nothing(pg_url: str, tenants: tuple[int, int], session: Any) -> None:
    own, other = tenants
    for value in (str(other), "", "0"):
        session.execute("SELECT set_config('obs.tenant_id', %s, false)", (value,))
        session.execute("SELECT obs_current_tenant()")
        assert session.fetchone()[0] == own
        _scan_everything(session, _all_relations(pg_url), own)
        session.execute("SELECT count(*) FROM obs_reader.metric_1m")
        assert session.fetchone()[0] == 1


def test_every_chunk_is_refused_including_one_created_after_the_reader(
        pg_url: str, tenants: tuple[int, int], session: Any) -> None:
    own, other = tenants
    before = set(_chunks(pg_url))
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        for tenant in tenants:
            cur.execute("INSERT INTO metric_1m (bucket, tenant_id, resource_id, metric, avg) "
                        "SELECT %s, %s, min(id), %s, 2 FROM dim_resource WHERE tenant_id = %s",
                        (LATE_BUCKET, tenant, FOREIGN_MARK if tenant == other else OWN_MARK, tenant))
    new = set(_chunks(pg_url)) - before
    assert new, "the late bucket needed a new chunk"
    for chunk in sorted(before | new):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            session.execute(f"SELECT * FROM {chunk}")
    session.execute("SELECT metric FROM metric_1m WHERE bucket = %s", (LATE_BUCKET,))
    assert session.fetchall() == [(OWN_MARK,)]


def test_the_base_tables_and_their_functions_are_refused(tenants: tuple[int, int], session: Any) -> None:
    own, other = tenants
    for statement, params in (
        ("SELECT * FROM public.metric_1m", ()),
        ("SELECT * FROM public.topo_edges_as_of(%s, now())", (other,)),
        ("SELECT * FROM public.topo_declared_vs_observed(%s, '2026-01-01', now())", (other,)),
        ("SELECT * FROM public.topo_declared_vs_observed_24h", ()),
        ("SELECT * FROM public.obs_tenant_reader", ()),
        ("SELECT obs_create_tenant_reader(current_user, 'globex')", ()),
        ("SELECT obs_drop_tenant_reader(current_user)", ()),
        ("SELECT obs_grant_tenant_readers()", ()),
        ("SELECT obs_disable_rls()", ()),  # owner only
        ("SET SESSION AUTHORIZATION postgres", ()),
        ("SET ROLE postgres", ()),
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            session.execute(statement, params or None)


def test_the_reader_functions_answer_for_its_tenant_only(tenants: tuple[int, int], session: Any) -> None:
    own, other = tenants
    at = BUCKET + timedelta(hours=1)
    session.execute("SELECT src_urn FROM topo_edges_as_of(%s, %s)", (own, at))
    assert session.fetchall() == [(f"urn:svc:{OWN_MARK}-web",)]
    session.execute("SELECT count(*) FROM topo_edges_as_of(%s, %s)", (other, at))
    assert session.fetchone()[0] == 0
    session.execute("SELECT count(*) FROM topo_declared_vs_observed(%s, %s, %s)", (other, BUCKET, at))
    assert session.fetchone()[0] == 0
    session.execute("SELECT DISTINCT tenant_id FROM topo_declared_vs_observed_24h")
    assert set(session.fetchall()) <= {(own,)}


def test_a_leaky_function_of_the_reader_sees_no_foreign_row(session: Any) -> None:
    """security_barrier: the views' tenant filter runs before any function the reader adds to a query."""
    session.execute("""CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
                       $$ BEGIN RAISE NOTICE 'leak: %', v; RETURN true; END $$""")
    session.connection.notices.clear()
    for table, column in (("metric_1m", "metric"), ("dim_resource", "urn"), ("log_pattern", "template"),
                          ("dim_tenant", "name")):
        session.execute(sql.SQL("SELECT count(*) FROM obs_reader.{} WHERE pg_temp.leak({}::text)").format(
            sql.Identifier(table), sql.Identifier(column)))
    notices = "".join(session.connection.notices)
    assert OWN_MARK in notices and FOREIGN_MARK not in notices


def test_no_security_definer_function_of_the_schema_can_be_used_to_look_past_the_views(pg_url: str) -> None:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.prosecdef "
                    "AND p.pronamespace IN ('public'::regnamespace, 'obs_reader'::regnamespace)")
        assert cur.fetchall() == []


def test_the_age_graph_is_refused_even_with_usage_on_ag_catalog(pg_url: str, reader: str, session: Any) -> None:
    query = ("SELECT * FROM ag_catalog.cypher('obs_graph', $$ MATCH (v:Resource) RETURN v.urn $$) AS (urn agtype)")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        session.execute(query)
    admin = _admin(pg_url)
    try:
        with admin.cursor() as cur:  # an administrator lets readers run Cypher at all
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA ag_catalog TO {}").format(sql.Identifier(reader)))
        session.execute("SET search_path = ag_catalog, obs_reader, public")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            session.execute(query)
        for label in ("Resource", "CALLS", "_ag_label_vertex", "_ag_label_edge"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                session.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("obs_graph", label)))
        session.execute("SELECT src_urn, dst_urn FROM obs_reader.active_call_edge")  # the graph's edges, its own
        assert session.fetchall() == [(f"urn:svc:{OWN_MARK}-web", f"urn:svc:{OWN_MARK}-db")]
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("REVOKE USAGE ON SCHEMA ag_catalog FROM {}").format(sql.Identifier(reader)))
        admin.close()


def test_forced_rls_keeps_working_for_the_reader(pg_url: str, tenants: tuple[int, int], session: Any) -> None:
    """obs_enable_rls(true) polices the views' owner too; the reader's binding is its tenant there."""
    own, other = tenants
    admin = _admin(pg_url)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT obs_enable_rls(true)")
        session.execute("SELECT set_config('obs.tenant_id', %s, false)", (str(other),))
        session.execute("SELECT DISTINCT tenant_id FROM obs_reader.metric_1m")
        assert session.fetchall() == [(own,)]
        _scan_everything(session, _all_relations(pg_url), own)
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT obs_disable_rls()")
        admin.close()


def test_a_grant_on_the_tables_is_reported_and_undone_by_creating_the_reader_again(
        pg_url: str, reader: str, tenants: tuple[int, int], session: Any) -> None:
    """The issue's recipe (enable RLS, grant every table) opens the chunks; the check names them."""
    admin = _admin(pg_url)
    with admin.cursor() as cur:
        cur.execute("SELECT obs_enable_rls()")
        cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(reader)))
        cur.execute("SELECT obs_enable_rls()")
        assert any(f"{reader} may SELECT metric_1m" in n and "no tenant boundary" in n for n in admin.notices)
        cur.execute("SELECT * FROM obs_tenant_reader_problems(%s)", (reader,))
        problems = "\n".join(r[0] for r in cur.fetchall())
        assert "_timescaledb_internal._hyper_" in problems and "metric_1m" in problems
        with pytest.raises(AssertionError, match="_timescaledb_internal._hyper_.* shows the other tenant"):
            _scan_everything(session, _all_relations(pg_url), tenants[0])  # the bypass of the issue, caught
        cur.execute("SELECT obs_create_tenant_reader(%s, 'acme')", (reader,))
        cur.execute("SELECT * FROM obs_tenant_reader_problems(%s)", (reader,))
        assert cur.fetchall() == []
        cur.execute("SELECT obs_disable_rls()")
    admin.close()
    _scan_everything(session, _all_relations(pg_url), tenants[0])


def test_a_role_that_inherits_table_access_is_refused_and_nothing_changes(pg_url: str, tenants: tuple[int, int]) -> None:
    group, member = f"obs_grp_{uuid.uuid4().hex[:10]}", f"obs_rd_{uuid.uuid4().hex[:10]}"
    admin = _admin(pg_url)
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(member),
                                                                          sql.Identifier(group)))
            cur.execute(sql.SQL("GRANT SELECT ON metric_1m TO {}").format(sql.Identifier(group)))
            with pytest.raises(psycopg2.errors.RaiseException, match="metric_1m"):
                cur.execute("SELECT obs_create_tenant_reader(%s, 'acme')", (member,))
            cur.execute("SELECT count(*) FROM obs_tenant_reader WHERE role_name = %s", (member,))
            assert cur.fetchone()[0] == 0
            with pytest.raises(psycopg2.errors.RaiseException, match="unknown tenant 'nosuch'"):
                cur.execute("SELECT obs_create_tenant_reader(%s, 'nosuch')", (member,))
    finally:
        for role in (member, group):
            _drop_role(admin, role)
        admin.close()


def test_creating_a_reader_is_idempotent_and_makes_a_missing_role(pg_url: str, tenants: tuple[int, int]) -> None:
    role = f"obs_rd_{uuid.uuid4().hex[:10]}"
    admin = _admin(pg_url)
    try:
        with admin.cursor() as cur:
            for _ in range(2):
                cur.execute("SELECT obs_create_tenant_reader(%s, 'globex')", (role,))
                assert cur.fetchone()[0] == tenants[1]
            cur.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
            assert cur.fetchall() == [(False,)], "created NOLOGIN: the administrator sets LOGIN and a password"
            with pytest.raises(psycopg2.errors.RaiseException, match="already the reader"):
                cur.execute("SELECT obs_create_tenant_reader(%s, 'acme')", (role,))
            cur.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
        conn = psycopg2.connect(as_role(pg_url, role))
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT tenant_id FROM metric_1m")
            assert cur.fetchall() == [(tenants[1],)]
        conn.close()
        with admin.cursor() as cur:
            cur.execute("SELECT obs_drop_tenant_reader(%s)", (role,))
        conn = psycopg2.connect(as_role(pg_url, role))
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM obs_reader.metric_1m")
        conn.close()
    finally:
        _drop_role(admin, role)
        admin.close()


def test_a_non_superuser_owner_makes_readers_on_a_server_without_age(pg_server_url: str) -> None:
    """Managed Postgres: the database owner (CREATEROLE, no superuser, no AGE) bootstraps and binds readers."""
    owner, role = f"obs_own_{uuid.uuid4().hex[:10]}", f"obs_rd_{uuid.uuid4().hex[:10]}"
    server = _admin(pg_server_url)
    with server.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(owner)))
    url = create_database(pg_server_url, "t_tenant_reader_owner")
    try:
        with server.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(url.rsplit("/", 1)[1]), sql.Identifier(owner)))
        owner_url = as_role(url, owner)
        report = bootstrap(owner_url)
        assert "age" in report.skipped_extensions
        acme, globex = (_fill_plain_tenant(owner_url, code, mark)
                        for code, mark in (("acme", OWN_MARK), ("globex", FOREIGN_MARK)))
        owner_conn = _admin(owner_url)
        with owner_conn.cursor() as cur:
            cur.execute("SELECT obs_create_tenant_reader(%s, 'acme')", (role,))
            cur.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
        conn = psycopg2.connect(as_role(url, role))
        conn.autocommit = True
        try:
            cur = conn.cursor()
            cur.execute("SELECT set_config('obs.tenant_id', %s, false)", (str(globex),))
            cur.execute("SELECT metric FROM metric_1m")
            assert cur.fetchall() == [(OWN_MARK,)]
            _scan_everything(cur, _all_relations(url), acme)
        finally:
            conn.close()
        with owner_conn.cursor() as cur:
            cur.execute("SELECT obs_drop_tenant_reader(%s)", (role,))
            assert cur.fetchone()[0] is True
        owner_conn.close()
    finally:  # dropping the database first leaves the roles nothing to own or be granted
        drop_database(pg_server_url, url)
        with server.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))
        server.close()


def _fill_plain_tenant(pg_url: str, code: str, mark: str) -> int:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        tenant = ensure_tenant(cur, code, f"{mark} tenant", configured=(code,))
        cur.execute("INSERT INTO dim_resource (tenant_id, urn) VALUES (%s, %s) RETURNING id",
                    (tenant, f"urn:svc:{mark}"))
        cur.execute("INSERT INTO metric_1m (bucket, tenant_id, resource_id, metric, avg) VALUES (%s, %s, %s, %s, 1)",
                    (BUCKET, tenant, cur.fetchone()[0], mark))
    return tenant
