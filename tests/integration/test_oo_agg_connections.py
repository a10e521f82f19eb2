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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg2
import pytest

from airflow_obs_provider.cli import main
from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.gen.oo_data import generate
from airflow_obs_provider.engine.oo.source import SourceSecrets, open_source
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, parse_time, to_us
from tests.conftest import create_database, drop_database
from tests.support.oo_agg_db import dump_tables
from tests.support.oo_api_server import OODouble
from tests.support.tables import diff_snapshots, snapshot

pytestmark = pytest.mark.integration

# One 1-minute window that closes the 5-minute bucket [10:00, 10:05): metric_1m, service_call_5m,
# dim_resource and oo_locator all get rows. The data covers the counter lookback and trace slack.
WINDOW = Window(parse_time("2024-05-01T10:04:00Z"), parse_time("2024-05-01T10:05:00Z"))
DATA_FROM, DATA_TO = parse_time("2024-05-01T09:56:00Z"), parse_time("2024-05-01T10:08:00Z")
BUCKET_FROM_US, BUCKET_TO_US = to_us(parse_time("2024-05-01T10:00:00Z")), to_us(WINDOW.end)

# Passwords in the Postgres connections: the dev server trusts loopback, so they are accepted and
# ignored, which lets the tests check that they never show up anywhere.
FILE_LIST_PASSWORD = "file-list-pw-4711"
WAREHOUSE_PASSWORD = "warehouse-pw-0815"

# Variables the CLI reads; removed for operator runs so only the Airflow connections can supply them.
SOURCE_ENV = ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION", "S3_SESSION_TOKEN",
              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "OO_API_URL", "OO_API_USER",
              "OO_API_PASSWORD", "OO_API_VERIFY", "OO_FILE_LIST_URL")

DAG_FILE = """
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator
from airflow_obs_provider.version_compat import DAG, DeltaDataIntervalTimetable

with DAG(dag_id={dag_id!r}, schedule=DeltaDataIntervalTimetable(timedelta(minutes=1)),
         start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False) as dag:
    OOToTimescaleOperator(task_id="aggregate", tenant={tenant!r}, config_path={config!r},
                          postgres_conn_id="obs_warehouse", retries=0, **{conn_ids!r})
"""


def with_password(libpq_url: str, password: str) -> str:
    parts = urlsplit(libpq_url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def postgres_conn_uri(libpq_url: str) -> str:
    """``AIRFLOW_CONN_*`` URI form of a Postgres database (Airflow's scheme is ``postgres``)."""
    return "postgres://" + libpq_url.split("://", 1)[1]


def aws_conn_uri(key: str, secret: str, endpoint_url: str, region: str) -> str:
    """``AIRFLOW_CONN_*`` URI form of an Amazon connection (extra fields as query parameters)."""
    query = urlencode({"endpoint_url": endpoint_url, "region_name": region})
    return f"aws://{quote(key, safe='')}:{quote(secret, safe='')}@/?{query}"


def aws_conn_json(key: str, secret: str, endpoint_url: str, region: str) -> str:
    return json.dumps({"conn_type": "aws", "login": key, "password": secret,
                       "extra": {"endpoint_url": endpoint_url, "region_name": region}})


def openobserve_conn_json(base_url: str, user: str, password: str, org: str, **extra: str) -> str:
    parts = urlsplit(base_url)
    return json.dumps({"conn_type": "openobserve", "host": parts.hostname, "port": parts.port,
                       "schema": parts.scheme, "login": user, "password": password,
                       "extra": {"org": org, **extra}})


@dataclass(frozen=True)
class Stack:
    config: Path
    s3: dict[str, str]  # S3_* as the CLI reads them
    file_list_url: str  # OO's metadata DB, with a (trusted, ignored) password
    local_copy: Path  # the same data without compaction leftovers, served by the API double
    api: OODouble
    api_url: str


@pytest.fixture(scope="module")
def stack(s3_env: dict[str, str], s3_bucket: str, pg_server_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same generated data on S3 (with file_list and compaction leftovers) and behind the API double."""
    file_list_db = create_database(pg_server_url, "t_oo_conn_file_list")
    file_list_url = with_password(file_list_db, FILE_LIST_PASSWORD)
    s3_secrets = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                               s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                               s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    generate(Storage.from_uri(f"s3://{s3_bucket}/oo", s3_secrets), DATA_FROM, DATA_TO, seed=7,
             file_list_url=file_list_db, compaction=True)
    root = tmp_path_factory.mktemp("oo_conn")
    generate(Storage.local(root / "oo"), DATA_FROM, DATA_TO, seed=7)
    bucket_source = {"kind": "s3", "bucket": s3_bucket, "prefix": "oo", "org": "default"}
    config = root / "etl.yaml"
    config.write_text(json.dumps({"tenants": [
        {"code": "s3list", "source": bucket_source},
        {"code": "s3files", "source": {**bucket_source, "file_list": True}},
        {"code": "viaapi", "source": {"kind": "api", "org": "default", "page_size": 1000}},
    ]}))
    double = OODouble(root / "oo")
    api_url = double.start()
    try:
        yield Stack(config, dict(s3_env), file_list_url, root / "oo", double, api_url)
    finally:
        double.stop()
        drop_database(pg_server_url, file_list_db)


def fresh_warehouse(pg_server_url: str, prefix: str) -> Iterator[str]:
    url = create_database(pg_server_url, prefix)
    bootstrap(url)
    yield url
    drop_database(pg_server_url, url)


@pytest.fixture()
def warehouse(pg_server_url: str) -> Iterator[str]:
    """A fresh bootstrapped database for the operator run."""
    yield from fresh_warehouse(pg_server_url, "t_oo_conn_op")


@pytest.fixture()
def cli_warehouse(pg_server_url: str) -> Iterator[str]:
    """A fresh bootstrapped database for the CLI run."""
    yield from fresh_warehouse(pg_server_url, "t_oo_conn_cli")


def run_cli(stack: Stack, tenant: str, pg_url: str, monkeypatch: pytest.MonkeyPatch, *,
            file_list: bool = False, api: bool = False, api_url: str | None = None,
            api_verify: str | None = None) -> None:
    """``obs-etl run oo-agg`` over WINDOW with credentials from environment variables only."""
    with monkeypatch.context() as env:
        for name in SOURCE_ENV:
            env.delenv(name, raising=False)
        for name, value in stack.s3.items():
            env.setenv(name, value)
        if file_list:
            env.setenv("OO_FILE_LIST_URL", stack.file_list_url)
        if api:
            env.setenv("OO_API_URL", api_url or stack.api_url)
            env.setenv("OO_API_USER", stack.api.user)
            env.setenv("OO_API_PASSWORD", stack.api.password)
            if api_verify:
                env.setenv("OO_API_VERIFY", api_verify)
        rc = main(["run", "oo-agg", "--config", str(stack.config), "--tenant", tenant,
                   "--from", WINDOW.start.isoformat(), "--to", WINDOW.end.isoformat(), "--pg-url", pg_url])
    assert rc == 0


def run_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, dag_id: str, tenant: str, config: Path,
                 pg_url: str, connections: dict[str, str], conn_ids: dict[str, str]) -> Any:
    """A one-task DAG through dag.test at logical date WINDOW.end (it covers WINDOW); returns the DagRun.

    Only the Airflow connections can supply credentials: the source variables the CLI reads are unset.
    """
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WAREHOUSE", postgres_conn_uri(with_password(pg_url, WAREHOUSE_PASSWORD)))
    for conn_id, value in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    dag_file = dags / f"{dag_id}.py"
    dag_file.write_text(DAG_FILE.format(dag_id=dag_id, tenant=tenant, config=str(config), conn_ids=conn_ids))
    # dag.test serialises DAGs from the configured bundles: one local bundle holding just this file.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags), "refresh_interval": 0}}]))
    spec = importlib.util.spec_from_file_location(dag_id, dag_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(logical_date=WINDOW.end)  # a manual run at L covers the interval ending at L


def ledger_rows(pg_url: str) -> list[tuple[Any, ...]]:
    """(tenant, window_from, window_to, status, error, details as text) of every oo-agg ledger row."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT t.code, e.window_from, e.window_to, e.status, e.error, e.details::text, e.dag_id "
                    "FROM etl_job_run e JOIN dim_tenant t ON t.id = e.tenant_id WHERE e.job = 'oo-agg' "
                    "ORDER BY 1, 2")
        return cur.fetchall()


def assert_no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a credential leaked into: {text[:500]}"


def secrets_of(stack: Stack) -> tuple[str, ...]:
    return (stack.s3["S3_SECRET_ACCESS_KEY"], stack.api.password, FILE_LIST_PASSWORD, WAREHOUSE_PASSWORD)


def assert_same_as_cli(op_url: str, cli_url: str, stack: Stack, tenant: str, dag_id: str) -> dict[str, list]:
    got, want = snapshot(op_url), snapshot(cli_url)
    assert got == want, diff_snapshots(got, want)
    assert want["metric_1m"] and want["service_call_5m"] and want["dim_resource"] and want["oo_locator"]
    (op_ledger,) = ledger_rows(op_url)
    assert op_ledger[:5] == (tenant, WINDOW.start, WINDOW.end, "success", None) and op_ledger[6] == dag_id
    for row in ledger_rows(op_url) + ledger_rows(cli_url):
        assert_no_secret_in(repr(row), *secrets_of(stack))
    return got


def log_records(snap: dict[str, list], stream: str = "default") -> int:
    """record_count of the logs locator of the closed bucket (oo_locator rows: code, type, stream, from, to, ...)."""
    (count,) = [r[-1] for r in snap["oo_locator"] if r[1] == "logs" and r[2] == stream]
    return int(count)


def live_log_records(stack: Stack) -> int:
    """Log records of the bucket in the copy without leftovers (what file_list selects)."""
    local = open_source({"kind": "local", "path": str(stack.local_copy), "org": "default"})
    return local.read("logs", "default", BUCKET_FROM_US, BUCKET_TO_US).records


# -- the three source paths, each equal to the CLI run ---------------------------------------------------------------

def test_s3_through_an_aws_connection_in_uri_form_equals_the_cli(
        stack: Stack, warehouse: str, cli_warehouse: str, airflow_home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = stack.s3
    run_cli(stack, "s3list", cli_warehouse, monkeypatch)
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_s3_uri", tenant="s3list", config=stack.config,
                       pg_url=warehouse, conn_ids={"aws_conn_id": "oo_bucket"}, connections={
                           "oo_bucket": aws_conn_uri(s3["S3_ACCESS_KEY_ID"], s3["S3_SECRET_ACCESS_KEY"],
                                                     s3["S3_ENDPOINT_URL"], s3["S3_REGION"])})
    assert str(run.state) == "success"
    snap = assert_same_as_cli(warehouse, cli_warehouse, stack, "s3list", "oo_conn_s3_uri")
    # Listing the bucket counts the compaction leftovers too: the file_list test below must differ.
    assert log_records(snap) == 2 * live_log_records(stack)


def test_s3_with_file_list_through_aws_json_and_postgres_connections_equals_the_cli(
        stack: Stack, warehouse: str, cli_warehouse: str, airflow_home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = stack.s3
    run_cli(stack, "s3files", cli_warehouse, monkeypatch, file_list=True)
    run = run_operator(tmp_path, monkeypatch, dag_id="oo_conn_s3_file_list", tenant="s3files",
                       config=stack.config, pg_url=warehouse,
                       conn_ids={"aws_conn_id": "oo_bucket_json", "file_list_conn_id": "oo_meta"},
                       connections={"oo_bucket_json": aws_conn_json(s3["S3_ACCESS_KEY_ID"], s3["S3_SECRET_ACCESS_KEY"],
                                                                    s3["S3_ENDPOINT_URL"], s3["S3_REGION"]),
                                    "oo_meta": postgres_conn_uri(stack.file_list_url)})
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

    Returns the failed window's ledger error, after checking the task failed, every table kept its
    rows, and neither the wrong nor any right credential shows up in the task log or the ledger.
    """
    run_cli(stack, tenant, warehouse, monkeypatch, **cli)
    before = dump_tables(warehouse)
    capfd.readouterr()
    run = run_operator(tmp_path, monkeypatch, dag_id=dag_id, tenant=tenant, config=stack.config, pg_url=warehouse,
                       connections=connections, conn_ids=conn_ids)
    task_log = "".join(capfd.readouterr())  # the task logger writes through Airflow's structlog to the console
    assert str(run.state) == "failed"
    assert dump_tables(warehouse) == before
    (row,) = ledger_rows(warehouse)
    assert row[:4] == (tenant, WINDOW.start, WINDOW.end, "failed") and row[6] == dag_id
    error = row[4]
    assert error and error in task_log  # the task log carries the same clear error
    for text in (task_log, repr(row)):
        assert_no_secret_in(text, wrong, *secrets_of(stack))
    return str(error)


def test_a_wrong_secret_in_the_aws_connection_fails_clearly_without_leaking_it(
        stack: Stack, warehouse: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    s3, wrong = stack.s3, "wrong-aws-secret-9931"
    error = run_failing(stack, warehouse, tmp_path, monkeypatch, capfd, tenant="s3list", dag_id="oo_conn_bad_aws",
                        cli={}, wrong=wrong, conn_ids={"aws_conn_id": "oo_bucket_bad"}, connections={
                            "oo_bucket_bad": aws_conn_json(s3["S3_ACCESS_KEY_ID"], wrong, s3["S3_ENDPOINT_URL"],
                                                           s3["S3_REGION"])})
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
    s3, wrong = stack.s3, "missing-db-pw-7070"
    missing = with_password(urlunsplit(urlsplit(stack.file_list_url)._replace(path="/no_such_oo_meta_db")), wrong)
    error = run_failing(stack, warehouse, tmp_path, monkeypatch, capfd, tenant="s3files",
                        dag_id="oo_conn_bad_file_list", cli={"file_list": True}, wrong=wrong,
                        conn_ids={"aws_conn_id": "oo_bucket_ok", "file_list_conn_id": "oo_meta_bad"},
                        connections={"oo_bucket_ok": aws_conn_json(s3["S3_ACCESS_KEY_ID"], s3["S3_SECRET_ACCESS_KEY"],
                                                                   s3["S3_ENDPOINT_URL"], s3["S3_REGION"]),
                                     "oo_meta_bad": postgres_conn_uri(missing)})
    assert "file_list" in error and "no_such_oo_meta_db" in error
