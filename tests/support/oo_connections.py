"""OOToTimescaleOperator's connection paths, shared by the Airflow 3 and Airflow 2.11 tests.

- ``AIRFLOW_CONN_*`` values the way users write them: an ``aws`` connection to an S3-compatible
  store (keys in login/password, ``endpoint_url``/``region_name`` in the extra; URI and JSON
  forms), an ``openobserve`` connection (JSON), Postgres URIs with a password
  (:func:`support.airflow_stack.airflow_conn_uri` is the one Postgres URI builder).
- :func:`oo_stack`: the same generated OpenObserve data on S3 (with OO's ``file_list`` table and
  compaction leftovers, so a run that listed the bucket instead of asking ``file_list`` would
  count records twice) and behind the loopback API double, plus an ETL config with one tenant
  per source path.
- the one-task DAG file both Airflow versions run, the CLI reference run (credentials from
  environment variables only) and the checks: equal to the CLI, ledger, no secret anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg2
import pytest
from support.databases import create_database, drop_database
from support.oo_agg_db import dump_tables
from support.oo_api_server import OODouble
from support.tables import diff_snapshots, snapshot

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.oo.source import SourceSecrets, open_source
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, parse_time, to_us

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

# The warehouse connection id every test DAG writes through.
WAREHOUSE_CONN_ID = "obs_warehouse"

DAG_FILE = """
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator
from airflow_obs_provider.version_compat import DAG, DeltaDataIntervalTimetable

with DAG(dag_id={dag_id!r}, schedule=DeltaDataIntervalTimetable(timedelta(minutes=1)),
         start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False) as dag:
    OOToTimescaleOperator(task_id="aggregate", tenant={tenant!r}, config_path={config!r},
                          postgres_conn_id={warehouse_conn_id!r}, retries=0, **{conn_ids!r})
"""


def write_dag_file(folder: Path, *, dag_id: str, tenant: str, config: Path, conn_ids: dict[str, str]) -> Path:
    """``folder/<dag_id>.py``: a one-task DAG running OOToTimescaleOperator for ``tenant`` (both Airflow versions)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, tenant=tenant, config=str(config), conn_ids=conn_ids,
                                    warehouse_conn_id=WAREHOUSE_CONN_ID))
    return path


# -- AIRFLOW_CONN_* values ----------------------------------------------------------------------------------------

def conn_env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def with_password(libpq_url: str, password: str) -> str:
    parts = urlsplit(libpq_url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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


# -- the data stack -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stack:
    config: Path
    s3: dict[str, str]  # S3_* as the CLI reads them
    file_list_url: str  # OO's metadata DB, with a (trusted, ignored) password
    local_copy: Path  # the same data without compaction leftovers, served by the API double
    api: OODouble
    api_url: str

    def aws_conn(self, *, secret: str | None = None, form: str = "json") -> str:
        """An ``aws`` connection to this stack's S3 server (``secret`` replaces the right one)."""
        build = aws_conn_json if form == "json" else aws_conn_uri
        return build(self.s3["S3_ACCESS_KEY_ID"], secret or self.s3["S3_SECRET_ACCESS_KEY"],
                     self.s3["S3_ENDPOINT_URL"], self.s3["S3_REGION"])

    def secrets(self) -> tuple[str, ...]:
        """Every right credential of the stack: none may show up in a log or the ledger."""
        return (self.s3["S3_SECRET_ACCESS_KEY"], self.api.password, FILE_LIST_PASSWORD, WAREHOUSE_PASSWORD)


@contextmanager
def oo_stack(s3_env: dict[str, str], s3_bucket: str, pg_server_url: str, root: Path) -> Iterator[Stack]:
    """The same generated data on S3 (with file_list and compaction leftovers) and behind the API double.

    Tenants of the config: ``s3list`` (S3, hour-prefix listing), ``s3files`` (S3 + file_list) and
    ``viaapi`` (the API; base URL and account come from the connection or ``OO_API_*``).
    """
    file_list_db = create_database(pg_server_url, "t_oo_conn_file_list")
    try:
        s3_secrets = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                                   s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                                   s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
        generate(Storage.from_uri(f"s3://{s3_bucket}/oo", s3_secrets), DATA_FROM, DATA_TO, seed=7,
                 file_list_url=file_list_db, compaction=True)
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
            yield Stack(config, dict(s3_env), with_password(file_list_db, FILE_LIST_PASSWORD), root / "oo", double,
                        api_url)
        finally:
            double.stop()
    finally:
        drop_database(pg_server_url, file_list_db)


def fresh_warehouse(pg_server_url: str, prefix: str) -> Iterator[str]:
    """A fresh bootstrapped database for one run (use with ``yield from`` in a fixture)."""
    url = create_database(pg_server_url, prefix)
    bootstrap(url)
    yield url
    drop_database(pg_server_url, url)


def run_cli(stack: Stack, tenant: str, pg_url: str, monkeypatch: pytest.MonkeyPatch, *,
            file_list: bool = False, api: bool = False, api_url: str | None = None,
            api_verify: str | None = None) -> None:
    """``obs-etl run oo-agg`` over WINDOW in this interpreter, credentials from environment variables only."""
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


# -- checks -------------------------------------------------------------------------------------------------------

def ledger_rows(pg_url: str) -> list[tuple[Any, ...]]:
    """(tenant, window_from, window_to, status, error, details as text, dag_id) of every oo-agg ledger row."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT t.code, e.window_from, e.window_to, e.status, e.error, e.details::text, e.dag_id "
                    "FROM etl_job_run e JOIN dim_tenant t ON t.id = e.tenant_id WHERE e.job = 'oo-agg' "
                    "ORDER BY 1, 2")
        return cur.fetchall()


def assert_no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a credential leaked into: {text[:500]}"


def assert_same_as_cli(op_url: str, cli_url: str, stack: Stack, tenant: str, dag_id: str) -> dict[str, list]:
    """The operator's tables equal the CLI's for WINDOW; its one ledger row is a success naming ``dag_id``."""
    got, want = snapshot(op_url), snapshot(cli_url)
    assert got == want, diff_snapshots(got, want)
    assert want["metric_1m"] and want["service_call_5m"] and want["dim_resource"] and want["oo_locator"]
    (op_ledger,) = ledger_rows(op_url)
    assert op_ledger[:5] == (tenant, WINDOW.start, WINDOW.end, "success", None) and op_ledger[6] == dag_id
    for row in ledger_rows(op_url) + ledger_rows(cli_url):
        assert_no_secret_in(repr(row), *stack.secrets())
    return got


def assert_failed_cleanly(stack: Stack, warehouse: str, before: dict[str, list[str]], task_log: str, *,
                          tenant: str, dag_id: str, wrong: str) -> str:
    """After a task that had a wrong credential: every table kept its rows, the window's ledger row is
    failed and names ``dag_id``, the task log carries the ledger's error, and neither the wrong nor any
    right credential shows up in the task log or the ledger. Returns the error."""
    assert dump_tables(warehouse) == before
    (row,) = ledger_rows(warehouse)
    assert row[:4] == (tenant, WINDOW.start, WINDOW.end, "failed") and row[6] == dag_id
    error = row[4]
    assert error and error in task_log  # the task log carries the same clear error
    for text in (task_log, repr(row)):
        assert_no_secret_in(text, wrong, *stack.secrets())
    return str(error)


def log_records(snap: dict[str, list], stream: str = "default") -> int:
    """record_count of the logs locator of the closed bucket (oo_locator rows: code, type, stream, from, to, ...)."""
    (count,) = [r[-1] for r in snap["oo_locator"] if r[1] == "logs" and r[2] == stream]
    return int(count)


def live_log_records(stack: Stack) -> int:
    """Log records of the bucket in the copy without leftovers (what file_list selects)."""
    local = open_source({"kind": "local", "path": str(stack.local_copy), "org": "default"})
    return local.read("logs", "default", BUCKET_FROM_US, BUCKET_TO_US).records
