"""Shared fixtures: real Postgres, S3 and Redis from the dev stack, one fresh database per test module.

Integration tests start the dev stack themselves when ``PG_URL`` / ``S3_ENDPOINT_URL`` / ``REDIS_URL``
are not set (``scripts/devstack start``), so plain ``pytest`` works on a fresh machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.databases import create_database, drop_database, with_database  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]
DEVSTACK = REPO / "scripts" / "devstack"


def _devstack_env(what: str) -> dict[str, str]:
    """Start (or reuse) a dev stack service and return the variables it exports."""
    out = subprocess.run(["bash", str(DEVSTACK), "start", what], check=True, capture_output=True, text=True,
                         env={**os.environ, "OBS_PYTHON": sys.executable})
    env_file = Path(out.stdout.strip().splitlines()[-1])
    found = {}
    for line in env_file.read_text().splitlines():
        m = re.match(r"export (\w+)=(.*)", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a running Postgres 17 with the extensions (the ``postgres`` maintenance DB)."""
    if not os.environ.get("PG_URL"):
        os.environ.update({k: v for k, v in _devstack_env("pg").items() if k == "PG_URL"})
    return os.environ["PG_URL"]


@pytest.fixture(scope="module")
def empty_pg_url(pg_server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test module (no schema)."""
    url = create_database(pg_server_url, "t_" + request.module.__name__.rsplit(".", 1)[-1])
    yield url
    drop_database(pg_server_url, url)


@pytest.fixture(scope="module")
def pg_url(empty_pg_url: str) -> str:
    """A fresh database for this test module with the full schema bootstrapped."""
    from airflow_obs_provider.engine.bootstrap import bootstrap

    bootstrap(empty_pg_url)
    return empty_pg_url


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """Endpoint and credentials of the real S3 server on loopback."""
    if not os.environ.get("S3_ENDPOINT_URL"):
        os.environ.update(_devstack_env("s3"))
    keys = ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION")
    return {k: os.environ[k] for k in keys}


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis server on loopback (the dev stack's ``redis``; the CeleryExecutor test's broker)."""
    if not os.environ.get("REDIS_URL"):
        os.environ.update({k: v for k, v in _devstack_env("redis").items() if k == "REDIS_URL"})
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="module")
def s3_bucket(s3_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket on the S3 server for this test module."""
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_env["S3_ENDPOINT_URL"], aws_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"], region_name=s3_env["S3_REGION"],
    )
    name = re.sub(r"[^a-z0-9-]", "-", f"t-{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:6]}".lower())
    client.create_bucket(Bucket=name[:63])
    yield name[:63]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name[:63]):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name[:63], Key=obj["Key"])
    client.delete_bucket(Bucket=name[:63])


# Airflow reads AIRFLOW_HOME once, when it is first imported: a test module importing it
# at collection time would otherwise pin the whole session to ~/airflow (an unmigrated
# SQLite file on a clean machine). So every test process gets one private home up front,
# which the ``airflow_home`` fixture migrates on first use. Tests that import helpers
# from this module load it a second time: the marker keeps one home per process.
_MARKER = "OBS_TEST_AIRFLOW_HOME"
if not os.environ.get(_MARKER, "").startswith(f"{os.getpid()}:"):
    os.environ[_MARKER] = f"{os.getpid()}:{tempfile.mkdtemp(prefix='obs-test-airflow-home-')}"
_SESSION_AIRFLOW_HOME = Path(os.environ[_MARKER].split(":", 1)[1])
os.environ.update({
    "AIRFLOW_HOME": str(_SESSION_AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
})


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME with a migrated (SQLite) metadata DB."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=dict(os.environ))
    return _SESSION_AIRFLOW_HOME
