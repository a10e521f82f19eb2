"""OOToTimescaleOperator's connection paths in real DAG runs (dag.test), against the CLI on the same data.

The connections are defined the way users define them, as ``AIRFLOW_CONN_*`` environment
variables (JSON and URI forms): an ``aws`` connection to the loopback S3 server (keys in
login/password, ``endpoint_url``/``region_name`` in the extra), an ``openobserve`` connection to
a loopback server following OO's search API, and a ``postgres`` connection to a database
holding OO's ``file_list`` table. Each operator run must write exactly what ``obs-etl run
oo-agg`` (credentials from environment variables) writes for the same window; each wrong
credential must fail the task clearly, without the secret, leaving the tables as they were.

The S3 copy of the data has compaction leftovers (files merged away but still in the
bucket, marked deleted in ``file_list``), so a run that silently listed the bucket instead
of asking ``file_list`` would count those records twice and differ.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from support.airflow_stack import airflow_conn_uri
from support.oo_agg_db import dump_tables
from support.oo_api_server import OODouble
from support.oo_connections import (
    SOURCE_ENV,
    WAREHOUSE_CONN_ID,
    WAREHOUSE_PASSWORD,
    WINDOW,
    Stack,
    assert_failed_cleanly,
    assert_same_as_cli,
    conn_env_name,
    fresh_warehouse,
    live_log_records,
    log_records,
    oo_stack,
    openobserve_conn_json,
    run_cli,
    with_password,
    write_dag_file,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(s3_env: dict[str, str], s3_bucket: str, pg_server_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same generated data on S3 (with file_list and compaction leftovers) and behind the API double."""
    with oo_stack(s3_env, s3_bucket, pg_server_url, tmp_path_factory.mktemp("oo_conn")) as built:
        yield built


@pytest.fixture()
def warehouse(pg_server_url: str) -> Iterator[str]:
    """A fresh bootstrapped database for the operator run."""
    yield from fresh_warehouse(pg_server_url, "t_oo_conn_op")


@pytest.fixture()
def cli_warehouse(pg_server_url: str) -> Iterator[str]:
    """A fresh bootstrapped database for the CLI run."""
    yield from fresh_warehouse(pg_server_url, "t_oo_conn_cli")


def run_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, dag_id: str, tenant: str, config: Path,
                 pg_url: str, connections: dict[str, str], conn_ids: dict[str, str]) -> Any:
    """A one-task DAG through dag.test at logical date WINDOW.end (it covers WINDOW); returns the DagRun.

    Only the Airflow connections can supply credentials: the source variables the CLI reads are unset.
    """
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(conn_env_name(WAREHOUSE_CONN_ID), airflow_conn_uri(with_password(pg_url, WAREHOUSE_PASSWORD)))
    for conn_id, value in connections.items():
        monkeypatch.setenv(conn_env_name(conn_id), value)
    dags = tmp_path / "dags"
    dag_file = write_dag_file(dags, dag_id=dag_id, tenant=tenant, config=config, conn_ids=conn_ids)
    # dag.test serialises DAGs from the configured bundles: one local bundle holding just this file.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags), "refresh_interval": 0}}]))
    spec = importlib.util.spec_from_file_location(dag_id, dag_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(logical_date=WINDOW.end)  # a manual run at L covers the interval ending at L


# -- the three source paths, each equal to the CLI run ---------------------------------------------------------------

def test_s3_through_an_aws_connection_in_uri_form_equals_the_cli(
        stack: Stack, warehouse: str, cli_warehouse: str, airflow_home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli(stack, "s3list", cli_warehouse, monkeypatch)
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_s3_uri", tenant="s3list", config=stack.config,
                       pg_url=warehouse, conn_ids={"aws_conn_id": "oo_bucket"},
                       connections={"oo_bucket": stack.aws_conn(form="uri")})
    assert str(run.state) == "success"
    snap = assert_same_as_cli(warehouse, cli_warehouse, stack, "s3list", "oo_conn_s3_uri")
    # Listing the bucket counts the compaction leftovers too: the file_list test below must differ.
    assert log_records(snap) == 2 * live_log_records(stack)


def test_s3_with_file_list_through_aws_json_and_postgres_connections_equals_the_cli(
        stack: Stack, warehouse: str, cli_warehouse: str, airflow_home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli(stack, "s3files", cli_warehouse, monkeypatch, file_list=True)
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_s3_file_list", tenant="s3files",
                       config=stack.config, pg_url=warehouse,
                       conn_ids={"aws_conn_id": "oo_bucket_json", "file_list_conn_id": "oo_meta"},
                       connections={"oo_bucket_json": stack.aws_conn(form="json"),
                                    "oo_meta": airflow_conn_uri(stack.file_list_url)})
    assert str(run.state) == "success"
    snap = assert_same_as_cli(warehouse, cli_warehouse, stack, "s3files", "oo_conn_s3_file_list")
    assert log_records(snap) == live_log_records(stack)  # leftovers skipped: file_list was asked


def test_api_through_an_openobserve_connection_equals_the_cli(
        stack: Stack, warehouse: str, cli_warehouse: str, airflow_home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli(stack, "viaapi", cli_warehouse, monkeypatch, api=True)
    stack.api.requests.clear()
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_api", tenant="viaapi", config=stack.config,
                       pg_url=warehouse, conn_ids={"oo_conn_id": "oo_api"}, connections={
                           "oo_api": openobserve_conn_json(stack.api_url, stack.api.user, stack.api.password,
                                                           "default")})
    assert str(run.state) == "success"
    assert stack.api.requests, "the operator run never called the OpenObserve API"
    snap = assert_same_as_cli(warehouse, cli_warehouse, stack, "viaapi", "oo_conn_api")
    assert log_records(snap) == live_log_records(stack)


@pytest.fixture(scope="module")
def tls_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The API double over HTTPS with a self-signed certificate (a private CA): (base URL, CA bundle path)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "ca.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    double = OODouble(stack.local_copy, user=stack.api.user, password=stack.api.password)
    url = double.start(tls=(cert, key))
    try:
        yield url, cert
    finally:
        double.stop()


def test_api_over_https_with_a_ca_bundle_in_the_openobserve_connection_equals_the_cli(
        stack: Stack, tls_api: tuple[str, Path], warehouse: str, cli_warehouse: str, airflow_home: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``verify_ssl`` may name a CA bundle (documented); it must reach the API reader as that path."""
    url, ca_bundle = tls_api
    run_cli(stack, "viaapi", cli_warehouse, monkeypatch, api=True, api_url=url, api_verify=str(ca_bundle))
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_api_tls", tenant="viaapi", config=stack.config,
                       pg_url=warehouse, conn_ids={"oo_conn_id": "oo_api_tls"}, connections={
                           "oo_api_tls": openobserve_conn_json(url, stack.api.user, stack.api.password, "default",
                                                               verify_ssl=str(ca_bundle))})
    assert str(run.state) == "success"
    snap = assert_same_as_cli(warehouse, cli_warehouse, stack, "viaapi", "oo_conn_api_tls")
    assert all(r[6] is None or r[6].startswith(url + "/web/") for r in snap["oo_locator"])


# -- a wrong credential in each connection: a clear failed task, no secret anywhere, tables as before ----------------

def run_failing(stack: Stack, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capfd: pytest.CaptureFixture[str], *, tenant: str, dag_id: str, cli: dict[str, bool],
                connections: dict[str, str], conn_ids: dict[str, str], wrong: str) -> str:
    """CLI run first (so there is something to keep), then the operator with a wrong credential.

    Returns the failed window's ledger error, after checking the task failed and
    :func:`assert_failed_cleanly` (tables kept, ledger failed, no credential in the task log or ledger).
    """
    run_cli(stack, tenant, warehouse, monkeypatch, **cli)
    before = dump_tables(warehouse)
    capfd.readouterr()
    run = run_operator(tmp_path, monkeypatch, dag_id=dag_id, tenant=tenant, config=stack.config, pg_url=warehouse,
                       connections=connections, conn_ids=conn_ids)
    task_log = "".join(capfd.readouterr())  # the task logger writes through Airflow's structlog to the console
    assert str(run.state) == "failed"
    return assert_failed_cleanly(stack, warehouse, before, task_log, tenant=tenant, dag_id=dag_id, wrong=wrong)


def test_a_wrong_secret_in_the_aws_connection_fails_clearly_without_leaking_it(
        stack: Stack, warehouse: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    wrong = "wrong-aws-secret-9931"
    error = run_failing(stack, warehouse, tmp_path, monkeypatch, capfd, tenant="s3list", dag_id="oo_conn_bad_aws",
                        cli={}, wrong=wrong, conn_ids={"aws_conn_id": "oo_bucket_bad"},
                        connections={"oo_bucket_bad": stack.aws_conn(secret=wrong)})
    assert "metrics/" in error  # names the stream it could not read
    assert any(word in error for word in ("SignatureDoesNotMatch", "AccessDenied", "ACCESS_DENIED", "signature"))


def test_a_wrong_password_in_the_openobserve_connection_fails_with_401_without_leaking_it(
        stack: Stack, warehouse: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    wrong = "wrong-oo-token-5521"
    error = run_failing(stack, warehouse, tmp_path, monkeypatch, capfd, tenant="viaapi", dag_id="oo_conn_bad_api",
                        cli={"api": True}, wrong=wrong, conn_ids={"oo_conn_id": "oo_api_bad"}, connections={
                            "oo_api_bad": openobserve_conn_json(stack.api_url, stack.api.user, wrong, "default")})
    assert "authentication refused (HTTP 401)" in error and stack.api_url in error


def test_a_file_list_connection_to_a_missing_database_fails_clearly_without_its_password(
        stack: Stack, warehouse: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    wrong = "missing-db-pw-7070"
    missing = with_password(urlunsplit(urlsplit(stack.file_list_url)._replace(path="/no_such_oo_meta_db")), wrong)
    error = run_failing(stack, warehouse, tmp_path, monkeypatch, capfd, tenant="s3files",
                        dag_id="oo_conn_bad_file_list", cli={"file_list": True}, wrong=wrong,
                        conn_ids={"aws_conn_id": "oo_bucket_ok", "file_list_conn_id": "oo_meta_bad"},
                        connections={"oo_bucket_ok": stack.aws_conn(form="json"),
                                     "oo_meta_bad": airflow_conn_uri(missing)})
    assert "file_list" in error and "no_such_oo_meta_db" in error
