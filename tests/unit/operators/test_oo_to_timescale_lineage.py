"""OpenLineage facets of OOToTimescaleOperator (the ``openlineage`` extra is installed in the test env)."""

from __future__ import annotations

import pytest

from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator, source_namespace


@pytest.mark.parametrize(
    ("source", "namespace"),
    [
        ({"kind": "s3", "bucket": "oo-data", "org": "acme"}, "s3://oo-data"),
        ({"kind": "api", "base_url": "https://oo.example.com:5080/prefix", "org": "acme"},
         "openobserve://oo.example.com:5080"),
        ({"kind": "local", "path": "/data/oo", "org": "acme"}, "file:///data/oo"),
    ],
)
def test_source_namespace_per_kind(source: dict, namespace: str) -> None:
    assert source_namespace(source) == namespace


def test_lineage_names_the_streams_read_and_the_tables_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl:pw@db.internal:6543/obs")
    op = OOToTimescaleOperator(task_id="aggregate", tenant="acme", postgres_conn_id="warehouse")
    op._sources = [{"kind": "s3", "bucket": "oo-data", "org": "acme"}]  # what execute() records
    lineage = op.get_openlineage_facets_on_complete(None)
    assert {(d.namespace, d.name) for d in lineage.inputs} == {
        ("s3://oo-data", "acme/metrics"), ("s3://oo-data", "acme/traces"), ("s3://oo-data", "acme/logs")}
    outputs = {(d.namespace, d.name) for d in lineage.outputs}
    assert ("postgres://db.internal:6543", "obs.public.metric_1m") in outputs
    assert ("postgres://db.internal:6543", "obs.public.service_call_5m") in outputs
    assert all("pw" not in ns for ns, _ in outputs)


def test_lineage_of_a_tenant_batch_names_every_tenants_streams(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl:pw@db.internal:6543/obs")
    config = tmp_path / "etl.yaml"
    config.write_text("tenants:\n  - {code: acme, source: {kind: s3, bucket: oo-data, org: acme}}\n"
                      "  - {code: globex, source: {kind: local, path: /data/oo}}\n")
    op = OOToTimescaleOperator(task_id="aggregate", tenants=["acme", "globex"], postgres_conn_id="warehouse",
                               config_path=str(config))
    op.load_config()  # what execute() does first
    lineage = op.get_openlineage_facets_on_complete(None)
    assert {(d.namespace, d.name) for d in lineage.inputs} == {
        *(("s3://oo-data", f"acme/{kind}") for kind in ("metrics", "traces", "logs")),
        *(("file:///data/oo", f"globex/{kind}") for kind in ("metrics", "traces", "logs"))}
