"""Topology jobs against the real Postgres (and S3): temporal diff, as-of queries, secrets, bad input."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from airflow_obs_provider.engine.config import EtlConfig, load_config
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.topology.model import TopologySourceError
from airflow_obs_provider.jobs.topology import run

pytestmark = pytest.mark.integration

INCLUDE = Path(__file__).resolve().parents[2] / "include"
T1 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
T3 = T2 + timedelta(hours=1)
WEB_B = 'urn:tf:module.web.aws_instance.web["web-b"]'
TF_SECRETS = ("Fixture-RDS-Pa55word-7c1e", "Fixture-Random-Result-91ab", "FixtureIamSecretKey9f8e7d6c5b4a3210fedcba98",
              "FixtureSmtpPassw0rd-BQ2x", "Fixture-SM-Secret-44d2", "Fixture-UserData-Token-5a5a",
              "Fixture-Container-Env-Secret-3b3b", "FixturePrivateKeyMaterial0001", "$2a$10$FixtureBcryptHashValue")
ANSIBLE_SECRETS = ("Fixture-Ansible-DbPass-66f1", "Fixture-Ansible-Token-8c2d", "Fixture-Ansible-PgSuper-19aa")


def _project(tmp_path: Path, terraform: dict[str, Any] | None = None) -> tuple[Path, str]:
    """A copy of the fixtures with an ETL YAML beside them; returns (folder, tenant code)."""
    root = tmp_path / "project"
    shutil.copytree(INCLUDE / "terraform", root / "terraform")
    shutil.copytree(INCLUDE / "ansible", root / "ansible")
    tenant = f"t{uuid.uuid4().hex[:8]}"
    block = {
        "code": tenant,
        "source": {"kind": "local", "path": "oo", "org": "default"},
        "terraform": terraform or {"states": ["terraform"]},
        "ansible": {"project": "ansible", "inventory": ["inventory/hosts.ini", "inventory/edge.yml"],
                    "playbooks": ["playbooks/site.yml"]},
    }
    (root / "etl.yaml").write_text(json.dumps({"tenants": [block]}))
    return root, tenant


def _config(root: Path) -> EtlConfig:
    return load_config(root / "etl.yaml")


def _edit_state(root: Path, drop: Callable[[dict[str, Any], dict[str, Any]], bool]) -> None:
    path = root / "terraform" / "app.tfstate"
    state = json.loads(path.read_text())
    for res in state["resources"]:
        res["instances"] = [i for i in res["instances"] if not drop(res, i)]
    state["resources"] = [r for r in state["resources"] if r["instances"]]
    path.write_text(json.dumps(state))


def _drop_web_b(res: dict[str, Any], inst: dict[str, Any]) -> bool:
    return res.get("module") == "module.web" and inst.get("index_key") == "web-b"


def _tenant_id(cur: Any, code: str) -> int:
    cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (code,))
    return int(cur.fetchone()[0])


def _edges_dump(pg_url: str, tenant: str, *, with_xmin: bool = False) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT e.id, s.urn, d.urn, e.edge_type, e.source, lower(e.valid), upper(e.valid), e.props::text, "
            "  CASE WHEN %s THEN e.xmin::text END "
            "FROM topo_edge_time e JOIN dim_resource s ON s.id = e.src_id JOIN dim_resource d ON d.id = e.dst_id "
            "JOIN dim_tenant t ON t.id = e.tenant_id WHERE t.code = %s ORDER BY e.id", (with_xmin, tenant))
        return cur.fetchall()


def _resources_dump(pg_url: str, tenant: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT r.id, r.urn, r.type, r.labels::text, r.first_seen, r.last_seen, r.xmin::text "
                    "FROM dim_resource r JOIN dim_tenant t ON t.id = r.tenant_id WHERE t.code = %s ORDER BY r.id",
                    (tenant,))
        return cur.fetchall()


def _as_of(pg_url: str, tenant: str, ts: datetime) -> set[tuple[str, str, str]]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT src_urn, edge_type, dst_urn FROM topo_edges_as_of(%s, %s)", (_tenant_id(cur, tenant), ts))
        return set(cur.fetchall())


def _ledger(pg_url: str, tenant: str, job: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT window_to, status, error FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id "
                    "WHERE t.code = %s AND r.job = %s ORDER BY window_to", (tenant, job))
        return cur.fetchall()


@pytest.mark.parametrize("source", ["terraform", "ansible"])
def test_same_input_twice_writes_no_edge_row(pg_url: str, tmp_path: Path, source: str) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    first = run(cfg, tenant, source, T1, pg_url=pg_url)
    assert first.status == "success" and first.details["opened"] == first.details["edges"] > 20
    before = _edges_dump(pg_url, tenant, with_xmin=True)

    later = run(cfg, tenant, source, T2, pg_url=pg_url)
    assert later.status == "success"
    assert (later.details["opened"], later.details["closed"], later.details["edges_written"]) == (0, 0, 0)
    assert _edges_dump(pg_url, tenant, with_xmin=True) == before  # same rows, same versions: nothing rewritten

    # the same observation again rewrites nothing at all, resources included
    resources = _resources_dump(pg_url, tenant)
    again = run(cfg, tenant, source, T2, pg_url=pg_url)
    assert again.details["nodes_written"] == 0 and again.details["edges_written"] == 0
    assert _resources_dump(pg_url, tenant) == resources
    assert _edges_dump(pg_url, tenant, with_xmin=True) == before


def test_removed_edge_closes_at_run_time_and_reappears_as_a_new_interval(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    original = (root / "terraform" / "app.tfstate").read_text()
    run(cfg, tenant, "terraform", T1, pg_url=pg_url)
    full = _as_of(pg_url, tenant, T1)
    # the instance web-b (routed to, in a subnet, secured by a group...) and its target group attachment
    touching_b = {e for e in full if '["web-b"]' in e[0] + e[2]}
    assert len([e for e in touching_b if WEB_B in (e[0], e[2])]) >= 3

    _edit_state(root, _drop_web_b)
    removed = run(cfg, tenant, "terraform", T2, pg_url=pg_url)
    assert removed.details["closed"] == len(touching_b) and removed.details["opened"] == 0
    rows = [r for r in _edges_dump(pg_url, tenant) if '["web-b"]' in r[1] + r[2]]
    assert rows and all(r[5] == T1 and r[6] == T2 for r in rows)  # [T1, T2): closed exactly at the run's time

    (root / "terraform" / "app.tfstate").write_text(original)
    back = run(cfg, tenant, "terraform", T3, pg_url=pg_url)
    assert back.details["opened"] == removed.details["closed"]  # every closed edge opens a new interval
    rows_b = [r for r in _edges_dump(pg_url, tenant) if '["web-b"]' in r[1] + r[2]]
    assert len(rows_b) == 2 * len(rows)
    assert {(r[5], r[6]) for r in rows_b} == {(T1, T2), (T3, None)}

    # as of: before, between and after the changes
    assert _as_of(pg_url, tenant, T1 - timedelta(seconds=1)) == set()
    assert _as_of(pg_url, tenant, T1 + timedelta(minutes=30)) == full
    assert _as_of(pg_url, tenant, T2) == full - touching_b  # upper bound exclusive
    assert _as_of(pg_url, tenant, T2 + timedelta(minutes=30)) == full - touching_b
    assert _as_of(pg_url, tenant, T3) == full
    assert _as_of(pg_url, tenant, T3 + timedelta(days=365)) == full


def test_ansible_dependency_change_closes_the_old_edge_and_opens_the_new(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    run(cfg, tenant, "ansible", T1, pg_url=pg_url)
    api_vars = root / "ansible" / "inventory" / "group_vars" / "api.yml"
    api_vars.write_text(api_vars.read_text().replace("- payments", "- billing"))
    result = run(cfg, tenant, "ansible", T2, pg_url=pg_url)
    assert (result.details["opened"], result.details["closed"]) == (1, 1)
    old = ("urn:svc:checkout-api", "DEPENDS_ON", "urn:svc:payments")
    new = ("urn:svc:checkout-api", "DEPENDS_ON", "urn:svc:billing")
    assert old in _as_of(pg_url, tenant, T1) and new not in _as_of(pg_url, tenant, T1)
    assert new in _as_of(pg_url, tenant, T2) and old not in _as_of(pg_url, tenant, T2)


def test_overlapping_intervals_of_one_edge_are_impossible(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    run(_config(root), tenant, "terraform", T1, pg_url=pg_url)
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT e.tenant_id, src_id, dst_id, edge_type, source FROM topo_edge_time e "
                        "JOIN dim_tenant t ON t.id = e.tenant_id WHERE t.code = %s LIMIT 1", (tenant,))
            key = cur.fetchone()
            insert = ("INSERT INTO topo_edge_time (tenant_id, src_id, dst_id, edge_type, source, valid) "
                      "VALUES (%s, %s, %s, %s, %s, tstzrange(%s, %s, '[)'))")
            with pytest.raises(psycopg2.errors.ExclusionViolation):
                cur.execute(insert, (*key, T1 - timedelta(days=1), T1 + timedelta(seconds=1)))
            conn.rollback()
            # touching intervals are fine; the same interval for another edge type is fine
            cur.execute(insert, (*key, T1 - timedelta(days=1), T1))
            cur.execute(insert, (*key[:3], "OTHER_TYPE", key[4], T1, None))
            conn.rollback()
    finally:
        conn.close()


def test_rerun_of_the_latest_observation_replaces_it(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    original = (root / "terraform" / "app.tfstate").read_text()
    run(cfg, tenant, "terraform", T1, pg_url=pg_url)
    clean = [r[1:] for r in _edges_dump(pg_url, tenant)]
    _edit_state(root, _drop_web_b)
    run(cfg, tenant, "terraform", T2, pg_url=pg_url)
    # a retry of T2 now sees the full state: as if T2 had always seen it
    (root / "terraform" / "app.tfstate").write_text(original)
    retry = run(cfg, tenant, "terraform", T2, pg_url=pg_url)
    assert retry.details["reopened"] > 0 and retry.details["opened"] == 0
    assert sorted(r[1:] for r in _edges_dump(pg_url, tenant)) == sorted(clean)

    # an attempt that opened an edge a retry no longer sees removes it instead of leaving [T3, T3)
    _edit_state(root, _drop_web_b)
    run(cfg, tenant, "terraform", T3, pg_url=pg_url)
    (root / "terraform" / "app.tfstate").write_text(original)
    run(cfg, tenant, "terraform", T3, pg_url=pg_url)
    assert sorted(r[1:] for r in _edges_dump(pg_url, tenant)) == sorted(clean)


def test_an_older_observation_is_skipped_and_changes_nothing(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    run(cfg, tenant, "terraform", T2, pg_url=pg_url)
    before = _edges_dump(pg_url, tenant, with_xmin=True)
    _edit_state(root, _drop_web_b)
    older = run(cfg, tenant, "terraform", T1, pg_url=pg_url)
    assert older.status == "skipped" and "later than" in older.details["skipped_reason"]
    assert _edges_dump(pg_url, tenant, with_xmin=True) == before
    assert [(w, s) for w, s, _ in _ledger(pg_url, tenant, "topo-iac")] == [(T1, "skipped"), (T2, "success")]


def test_an_older_observation_is_skipped_also_after_a_later_one_that_changed_nothing(pg_url: str,
                                                                                     tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    run(cfg, tenant, "terraform", T1, pg_url=pg_url)
    unchanged = run(cfg, tenant, "terraform", T2, pg_url=pg_url)
    assert unchanged.details["edges_written"] == 0  # T2 left no interval bound: only the ledger knows it
    before = _edges_dump(pg_url, tenant, with_xmin=True)
    _edit_state(root, _drop_web_b)
    rerun = run(cfg, tenant, "terraform", T1, pg_url=pg_url)
    assert rerun.status == "skipped" and T2.isoformat() in rerun.details["skipped_reason"]
    assert _edges_dump(pg_url, tenant, with_xmin=True) == before


def _text_columns(cur: Any) -> list[tuple[str, str]]:
    cur.execute("SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                "AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY', "
                "'tstzrange', 'USER-DEFINED')")
    return cur.fetchall()


def test_secrets_from_state_and_vars_never_reach_the_database(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    assert run(cfg, tenant, "terraform", T1, pg_url=pg_url).status == "success"
    assert run(cfg, tenant, "ansible", T1, pg_url=pg_url).status == "success"
    state_text = (root / "terraform" / "app.tfstate").read_text()
    assert all(s in state_text for s in TF_SECRETS)  # the fixture really holds them
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        columns = _text_columns(cur)
        assert ("dim_resource", "labels") in columns and ("etl_job_run", "details") in columns
        for table, column in columns:
            for secret in TF_SECRETS + ANSIBLE_SECRETS:
                cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE strpos({}::text, %s) > 0").format(
                    sql.Identifier(table), sql.Identifier(column)), (secret,))
                assert cur.fetchone()[0] == 0, (table, column, secret)
        # and the identities did arrive
        cur.execute("SELECT labels->>'arn' FROM dim_resource WHERE urn = 'urn:tf:aws_db_instance.orders' "
                    "AND tenant_id = %s", (_tenant_id(cur, tenant),))
        assert cur.fetchone()[0].endswith(":db:prod-orders")


@pytest.mark.parametrize("breakage, message", [
    ("json", r"terraform state terraform/app\.tfstate is not valid JSON"),
    ("version", r"terraform state terraform/app\.tfstate has format version 3"),
    ("inventory", r"ansible inventory inventory/hosts\.ini, inventory/edge\.yml cannot be read"),
    ("no-resources", r"terraform state terraform/app\.tfstate has no 'resources' key"),
    ("no-instances", r"terraform state terraform/app\.tfstate: \S+ has no 'instances' list"),
    ("empty-inventory", r"ansible inventory inventory/hosts\.ini, inventory/edge\.yml lists no host"),
])
def test_bad_input_fails_the_ledger_and_leaves_tables_untouched(pg_url: str, tmp_path: Path, breakage: str,
                                                                message: str) -> None:
    root, tenant = _project(tmp_path)
    cfg = _config(root)
    source = "ansible" if "inventory" in breakage else "terraform"
    job = "topo-ansible" if source == "ansible" else "topo-iac"
    run(cfg, tenant, source, T1, pg_url=pg_url)
    edges, resources = _edges_dump(pg_url, tenant, with_xmin=True), _resources_dump(pg_url, tenant)
    if breakage == "json":
        (root / "terraform" / "app.tfstate").write_text('{"version": 4, "resources": [ {"type": ')
    elif breakage == "version":
        (root / "terraform" / "app.tfstate").write_text(json.dumps({"version": 3, "modules": []}))
    elif breakage == "no-resources":  # issue 12 D12: accepted before, and closed every edge
        (root / "terraform" / "app.tfstate").write_text(json.dumps({"version": 4}))
    elif breakage == "no-instances":
        state = json.loads((root / "terraform" / "app.tfstate").read_text())
        del next(r for r in state["resources"] if r.get("mode") == "managed")["instances"]
        (root / "terraform" / "app.tfstate").write_text(json.dumps(state))
    elif breakage == "empty-inventory":
        (root / "ansible" / "inventory" / "hosts.ini").write_text("")
        (root / "ansible" / "inventory" / "edge.yml").write_text("all:\n  hosts: {}\n")
    else:
        (root / "ansible" / "inventory" / "hosts.ini").write_text("[web\nweb1 ansible_host=\n[web:children\n")
    with pytest.raises(TopologySourceError, match=message):
        run(cfg, tenant, source, T2, pg_url=pg_url)
    assert _edges_dump(pg_url, tenant, with_xmin=True) == edges
    assert _resources_dump(pg_url, tenant) == resources
    ledger = _ledger(pg_url, tenant, job)
    assert ledger[-1][:2] == (T2, "failed")
    assert "TopologySourceError" in ledger[-1][2]


def test_state_files_on_s3(pg_url: str, tmp_path: Path, s3_env: dict[str, str], s3_bucket: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env["S3_ENDPOINT_URL"], aws_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"], region_name=s3_env["S3_REGION"])
    for name in ("network.tfstate", "app.tfstate"):
        client.put_object(Bucket=s3_bucket, Key=f"states/{name}", Body=(INCLUDE / "terraform" / name).read_bytes())
    root, tenant = _project(tmp_path, terraform={"states": [f"s3://{s3_bucket}/states/network.tfstate",
                                                            f"s3://{s3_bucket}/states/app.tfstate"]})
    secrets = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                            s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                            s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    result = run(_config(root), tenant, "terraform", T1, pg_url=pg_url, secrets=secrets)
    assert result.status == "success" and result.details["states"] == 2

    local_root, local_tenant = _project(tmp_path / "local")
    run(_config(local_root), local_tenant, "terraform", T1, pg_url=pg_url)
    assert _as_of(pg_url, tenant, T1) == _as_of(pg_url, local_tenant, T1)

    wrong = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"], s3_secret_access_key="not-the-secret-0000",
                          s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    with pytest.raises(TopologySourceError, match=r"cannot be read from S3") as err:
        run(_config(root), tenant, "terraform", T2, pg_url=pg_url, secrets=wrong)
    assert "not-the-secret-0000" not in str(err.value)


def test_declared_dependencies_against_observed_calls(pg_url: str, tmp_path: Path) -> None:
    root, tenant = _project(tmp_path)
    run(_config(root), tenant, "ansible", T1, pg_url=pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        tid = _tenant_id(cur, tenant)
        cur.execute("INSERT INTO dim_resource (tenant_id, urn, type) VALUES (%s, 'urn:svc:fraud-check', 'service') "
                    "ON CONFLICT DO NOTHING", (tid,))

        def rid(urn: str) -> int:
            cur.execute("SELECT id FROM dim_resource WHERE tenant_id = %s AND urn = %s", (tid, urn))
            return int(cur.fetchone()[0])

        calls = [("urn:svc:storefront", "urn:svc:checkout-api", T1 + timedelta(minutes=5), 120, 3),
                 ("urn:svc:storefront", "urn:svc:checkout-api", T1 + timedelta(minutes=10), 80, 0),
                 ("urn:svc:checkout-api", "urn:svc:fraud-check", T1 + timedelta(minutes=5), 40, 1),
                 ("urn:svc:checkout-api", "urn:svc:payments", T1 + timedelta(hours=5), 10, 0)]  # outside the range
        for src, dst, bucket, n, errors in calls:
            cur.execute("INSERT INTO service_call_5m (bucket, tenant_id, src_id, dst_id, calls, errors) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (bucket, tid, rid(src), rid(dst), n, errors))
        cur.execute("SELECT src_urn, dst_urn, status, calls, errors FROM topo_declared_vs_observed(%s, %s, %s)",
                    (tid, T1, T1 + timedelta(hours=1)))
        got = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
    assert got[("urn:svc:storefront", "urn:svc:checkout-api")] == ("declared_seen", 200, 3)
    assert got[("urn:svc:checkout-api", "urn:svc:fraud-check")] == ("seen_undeclared", 40, 1)
    assert got[("urn:svc:checkout-api", "urn:svc:payments")] == ("declared_unseen", 0, 0)
    assert got[("urn:svc:checkout-api", "urn:db:postgresql:orders")] == ("declared_unseen", 0, 0)
    assert not any(src.startswith("urn:ansible:") for src, _ in got)  # role dependencies are not app dependencies


def test_cli_run_topo_iac_and_topo_ansible(pg_url: str, tmp_path: Path) -> None:
    from airflow_obs_provider.cli import main

    root, tenant = _project(tmp_path)
    for job in ("topo-iac", "topo-ansible"):
        code = main(["run", job, "--config", str(root / "etl.yaml"), "--tenant", tenant, "--at",
                     "2026-03-01T00:00:00Z", "--pg-url", pg_url])
        assert code == 0
    assert [s for _, s, _ in _ledger(pg_url, tenant, "topo-iac")] == ["success"]
    assert [s for _, s, _ in _ledger(pg_url, tenant, "topo-ansible")] == ["success"]
    sources = {r[4] for r in _edges_dump(pg_url, tenant)}
    assert sources == {"terraform", "ansible"}


def _empty_states(root: Path) -> None:
    for path in (root / "terraform").glob("*.tfstate"):
        path.write_text(json.dumps({"version": 4, "terraform_version": "1.9.0", "serial": 9, "lineage": "x",
                                    "outputs": {}, "resources": []}))


@pytest.mark.parametrize("source", ["terraform", "ansible"])
def test_an_observation_closing_most_open_edges_is_refused_unless_allowed(pg_url: str, tmp_path: Path,
                                                                          source: str) -> None:
    from airflow_obs_provider.engine.topology.diff import MassCloseRefused

    root, tenant = _project(tmp_path)
    run(_config(root), tenant, source, T1, pg_url=pg_url)
    edges, resources = _edges_dump(pg_url, tenant, with_xmin=True), _resources_dump(pg_url, tenant)
    at_t1 = _as_of(pg_url, tenant, T1)
    if source == "terraform":  # a wrong workspace or emptied state files: valid, but nearly empty
        _empty_states(root)
    else:
        (root / "ansible" / "inventory" / "hosts.ini").write_text("[web]\nweb9\n")
        (root / "ansible" / "inventory" / "edge.yml").write_text("all:\n  hosts: {}\n")
    with pytest.raises(MassCloseRefused, match=r"would close \d+ of the \d+ open .* allow_mass_close: true"):
        run(_config(root), tenant, source, T2, pg_url=pg_url)
    assert _edges_dump(pg_url, tenant, with_xmin=True) == edges
    assert _resources_dump(pg_url, tenant) == resources
    assert _ledger(pg_url, tenant, "topo-iac" if source == "terraform" else "topo-ansible")[-1][1] == "failed"

    config = json.loads((root / "etl.yaml").read_text())
    config["tenants"][0][source]["allow_mass_close"] = True
    (root / "etl.yaml").write_text(json.dumps(config))
    allowed = run(_config(root), tenant, source, T2, pg_url=pg_url)
    assert allowed.status == "success" and allowed.details["closed"] > len(edges) // 2
    assert _as_of(pg_url, tenant, T1) == at_t1  # history is never rewritten
    assert len(_as_of(pg_url, tenant, T2)) < len(at_t1) // 2


def test_a_future_observation_time_is_refused(pg_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_obs_provider.cli import main

    root, tenant = _project(tmp_path)
    for job in ("topo-iac", "topo-ansible"):
        assert main(["run", job, "--config", str(root / "etl.yaml"), "--tenant", tenant, "--at",
                     "2099-01-01T00:00:00Z", "--pg-url", pg_url]) == 1
        assert "is in the future" in capsys.readouterr().err
        assert _ledger(pg_url, tenant, job) == []
    assert main(["run", "age-refresh", "--tenant", tenant, "--at", "2099-01-01T00:00:00Z", "--pg-url", pg_url]) == 1
    assert "is in the future" in capsys.readouterr().err


def test_a_future_observation_stored_by_an_older_version_never_blocks(pg_url: str, tmp_path: Path) -> None:
    from airflow_obs_provider.engine.ledger import run_window
    from airflow_obs_provider.engine.topology.diff import apply_observation, lock_source
    from airflow_obs_provider.engine.window import Window
    from airflow_obs_provider.jobs.topology import read_source

    root, tenant = _project(tmp_path)
    original = (root / "terraform" / "app.tfstate").read_text()
    assert run(_config(root), tenant, "terraform", T1, pg_url=pg_url).status == "success"
    at_t1 = _as_of(pg_url, tenant, T1)
    far = datetime(2099, 1, 1, tzinfo=UTC)
    _edit_state(root, _drop_web_b)

    def old_version(tx: Any) -> None:  # what `topo-iac --at 2099-...` did before the check existed
        lock_source(tx.cur, tx.tenant_id, "terraform")
        topo, _ = read_source("terraform", _config(root).tenant(tenant), _config(root))
        apply_observation(tx.cur, tx.tenant_id, topo, far)

    run_window("topo-iac", tenant, Window(far - timedelta(minutes=15), far), old_version, pg_url=pg_url)
    (root / "terraform" / "app.tfstate").write_text(original)
    later = run(_config(root), tenant, "terraform", T2, pg_url=pg_url)
    assert later.status == "success", later.details.get("skipped_reason")
    assert later.details["future_bounds_undone"] > 0
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM topo_edge_time e JOIN dim_tenant t ON t.id = e.tenant_id "
                    "WHERE t.code = %s AND (lower(e.valid) > now() OR upper(e.valid) > now())", (tenant,))
        assert cur.fetchone()[0] == 0
    conn.close()
    assert _as_of(pg_url, tenant, T2) == at_t1  # the 2099 closures were undone; T1's edges still open
    assert run(_config(root), tenant, "terraform", T3, pg_url=pg_url).status == "success"
