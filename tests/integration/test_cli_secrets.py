"""Passwords in connection URLs never reach stdout, stderr, the ledger or ``obs-etl status`` (the real CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import floor_time

# a recent window: status lists the failures of the last 24 hours
START = floor_time(datetime.now(UTC) - timedelta(hours=1), timedelta(minutes=1))
RANGE = ("--from", START.isoformat(), "--to", (START + timedelta(minutes=1)).isoformat())

pytestmark = pytest.mark.integration

# Parts of the passwords below that must not show anywhere (a partial echo is a leak too).
PASSWORD_FORMS = [
    ("postgresql://:hunter2xq@127.0.0.1:1/x", ("hunter2xq",)),
    ("postgresql://app:hunter3xq@127.0.0.1:1/x", ("hunter3xq",)),
    ("postgresql://app:p@ssWdq@127.0.0.1:1/x", ("p@ss", "ssWdq")),
    ("postgresql://app:pa/ssWdq@127.0.0.1:1/x", ("pa/ss", "ssWdq")),
    ("postgresql://app@127.0.0.1:1/x?password=hunter4xq", ("hunter4xq",)),
    ("postgresql://127.0.0.1:1/x?sslmode=disable&password=hunter5xq", ("hunter5xq",)),
    ("host=127.0.0.1 port=1 dbname=x password=hunter6xq", ("hunter6xq",)),
    ("host=127.0.0.1 port=1 dbname=x password='hunter 7xq'", ("hunter 7xq", "7xq")),
]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OBS_ETL_CONFIG": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


def _assert_absent(text: str, secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} shown in:\n{text}"


def _ledger_and_locators(pg_url: str) -> str:
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(string_agg(r::text, E'\\n'), '') FROM etl_job_run r")
            ledger = cur.fetchone()[0]
            cur.execute("SELECT coalesce(string_agg(l::text, E'\\n'), '') FROM oo_locator l")
            return str(ledger) + "\n" + str(cur.fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize(("url", "secrets"), PASSWORD_FORMS)
def test_status_never_echoes_the_password_of_its_pg_url(url: str, secrets: tuple[str, ...]) -> None:
    for verbose in ((), ("-v",)):
        out = _cli(*verbose, "status", "--pg-url", url)
        assert out.returncode == 1
        assert "cannot connect to Postgres" in out.stderr
        _assert_absent(out.stdout + out.stderr, secrets)


@pytest.mark.parametrize(("url", "secrets"), PASSWORD_FORMS)
def test_pg_url_from_the_environment_is_not_echoed_either(url: str, secrets: tuple[str, ...]) -> None:
    out = _cli("status", env={"PG_URL": url})
    assert out.returncode == 1
    _assert_absent(out.stdout + out.stderr, secrets)


@pytest.fixture(scope="module")
def oo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_secrets")
    generate(Storage.local(root / "oo"), START, START + timedelta(minutes=2), seed=5)
    return root


def _config(root: Path, name: str, source: str) -> Path:
    path = root / name
    path.write_text(f"tenants:\n  - code: acme\n    source: {source}\n")
    return path


def _failing_run_then_status(config: Path, pg_url: str, env: dict[str, str], says: str) -> str:
    """``run oo-agg`` that fails (its message names ``says``), then ``status`` listing the failure: all
    they print, plus the ledger and the locators."""
    run = _cli("run", "oo-agg", "--config", str(config), "--tenant", "acme", *RANGE, "--pg-url", pg_url,
               env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert says in run.stderr
    status = _cli("status", "--pg-url", pg_url, env=env)
    assert says in status.stdout
    return run.stdout + run.stderr + status.stdout + status.stderr + _ledger_and_locators(pg_url)


@pytest.mark.parametrize(("url", "secrets"), PASSWORD_FORMS[:6])
def test_a_file_list_url_password_stays_out_of_stderr_ledger_and_status(
        url: str, secrets: tuple[str, ...], oo_folder: Path, pg_url: str) -> None:
    config = _config(oo_folder, "file_list.yaml", "{kind: local, path: oo, org: default, file_list: true}")
    shown = _failing_run_then_status(config, pg_url, {"OO_FILE_LIST_URL": url}, "file_list")
    _assert_absent(shown, secrets)


@pytest.mark.parametrize("base_url", ["https://etl:ApiUrlPw1q@127.0.0.1:1", "http://:ApiUrlPw1q@127.0.0.1:1/oo",
                                      "http://etl:Api/UrlPw1q@127.0.0.1:1", "http://etl:Api@UrlPw1q@127.0.0.1:1"])
def test_an_oo_api_url_password_stays_out_of_stderr_ledger_and_status(base_url: str, oo_folder: Path,
                                                                      pg_url: str) -> None:
    config = _config(oo_folder, "api.yaml", "{kind: api, org: default, timeout: 5}")
    env = {"OO_API_URL": base_url, "OO_API_USER": "etl@example.com", "OO_API_PASSWORD": "ApiTokenPw2q"}
    shown = _failing_run_then_status(config, pg_url, env, "OpenObserve API")
    _assert_absent(shown, ("UrlPw1q", "ApiTokenPw2q"))
