"""Secrets in the values URNs are built from never reach dim_resource, the facts, topo_edge_time or the graph."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg2 import sql

from airflow_obs_provider.cli import main
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

FROM, TO = "2024-05-01T10:00:00Z", "2024-05-01T10:10:00Z"
F = to_us(parse_time(FROM))
SECONDS = 1_000_000
# one secret per way into a URN, each a distinctive word that no mask but a secret one would hide
SERVICE = "svc password=UrnSvcPw1"            # service name with key=value
CALLER = "checkout token: UrnTokPw2"          # a caller service in spans
DB_NAME = "postgres://x:UrnDbPw3@h/db"        # a span's db_name -> urn:db:...
PEER_URL = "https://deploy:UrnUrlPw4@api.example.com/v1"  # a span's url -> urn:ext:<host> (host only)
DEPENDS_URL = "postgres://app:UrnAnsPw5@db1.internal:5432/orders"  # Ansible obs_depends_on
SECRET_WORDS = ("UrnSvcPw1", "UrnTokPw2", "UrnDbPw3", "UrnUrlPw4", "UrnAnsPw5")


def _write(root: Path, stream_type: str, stream: str, table: pa.Table) -> None:
    folder = root / "oo" / "files" / "default" / stream_type / stream / "2024" / "05" / "01" / "10"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "a.parquet")


def _ansible_project(root: Path) -> None:
    inventory = root / "ansible" / "inventory"
    inventory.mkdir(parents=True)
    (inventory / "hosts.yml").write_text(json.dumps({"all": {"children": {"app": {"hosts": {
        "app1": {"obs_depends_on": [DEPENDS_URL, f"urn:svc:{SERVICE}"]}}}}}}))
    (root / "ansible" / "playbooks").mkdir()
    (root / "ansible" / "playbooks" / "site.yml").write_text("- hosts: app\n  roles: []\n")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> str:
    root = tmp_path_factory.mktemp("urn_secrets")
    ts = [F + i * 10 * SECONDS for i in range(6)]
    _write(root, "metrics", "cpu", pa.table({"_timestamp": ts, "value": [1.0] * 6, "service_name": [SERVICE] * 6}))
    _write(root, "logs", "default", pa.table({"_timestamp": ts, "body": ["request served"] * 6,
                                              "service_name": [SERVICE] * 6}))
    # client spans without a server partner: the peer becomes a virtual node from db_name / url
    _write(root, "traces", "default", pa.table({
        "_timestamp": [F + SECONDS, F + 2 * SECONDS, F + 3 * SECONDS, F + 3 * SECONDS + 10],
        "trace_id": ["t1", "t2", "t3", "t3"], "span_id": ["a", "b", "c", "d"],
        "reference_parent_span_id": [None, None, None, "c"],
        "service_name": [SERVICE, SERVICE, CALLER, SERVICE], "span_kind": ["3", "3", "3", "2"],
        "span_status": ["OK"] * 4, "duration": [1000, 1000, 1000, 500],
        "db_system": ["postgresql", None, None, None], "db_name": [DB_NAME, None, None, None],
        "url_full": [None, PEER_URL, None, None]}))
    _ansible_project(root)
    config = root / "etl.yaml"
    config.write_text(json.dumps({"tenants": [{
        "code": "acme", "source": {"kind": "local", "path": "oo", "org": "default"},
        "ansible": {"project": "ansible", "inventory": ["inventory/hosts.yml"], "playbooks": ["playbooks/site.yml"]},
    }]}))
    common = ["--config", str(config), "--tenant", "acme", "--pg-url", pg_url]
    assert main(["run", "oo-agg", *common, "--from", FROM, "--to", TO]) == 0
    assert main(["run", "age-refresh", "--tenant", "acme", "--at", TO, "--pg-url", pg_url]) == 0
    assert main(["run", "topo-ansible", *common, "--at", TO]) == 0
    return pg_url


def _all_text(pg_url: str) -> dict[str, str]:
    """Every row of every table of the public schema and of the AGE graph, as text."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT table_schema, table_name FROM information_schema.tables
                           WHERE table_schema IN ('public', 'obs_graph') AND table_type = 'BASE TABLE'""")
            out = {}
            for schema, table in cur.fetchall():
                cur.execute(sql.SQL("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {}.{} t").format(
                    sql.Identifier(schema), sql.Identifier(table)))
                out[f"{schema}.{table}"] = cur.fetchone()[0]
            return out
    finally:
        conn.close()


def test_no_secret_in_any_table_or_the_graph(ran: str) -> None:
    tables = _all_text(ran)
    assert "obs_graph.Resource" in tables and "public.topo_edge_time" in tables
    for name, text in tables.items():
        for word in SECRET_WORDS:
            assert word.lower() not in text.lower(), f"{word} in {name}"


def test_the_resources_are_still_there_with_their_secrets_masked(ran: str) -> None:
    conn = psycopg2.connect(ran)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT urn FROM dim_resource ORDER BY urn")
            urns = {r[0] for r in cur.fetchall()}
            cur.execute("SELECT s.urn, d.urn FROM service_call_5m c JOIN dim_resource s ON s.id = c.src_id "
                        "JOIN dim_resource d ON d.id = c.dst_id")
            calls = set(cur.fetchall())
            cur.execute("SELECT s.urn, d.urn FROM topo_edge_time e JOIN dim_resource s ON s.id = e.src_id "
                        "JOIN dim_resource d ON d.id = e.dst_id WHERE e.edge_type = 'DEPENDS_ON'")
            depends = set(cur.fetchall())
    finally:
        conn.close()
    service = "urn:svc:svc password=<secret>"
    assert service in urns
    assert (service, "urn:db:postgresql:postgres://x:<secret>@h/db") in calls
    assert (service, "urn:ext:api.example.com") in calls
    assert ("urn:svc:checkout token: <secret>", service) in calls
    assert ("urn:svc:app1", "urn:svc:postgres://app:<secret>@db1.internal:5432/orders") in depends
    assert ("urn:svc:app1", service) in depends
