"""Only configured tenants (and ``default``) are created in dim_tenant; a typo is an error naming it (issue 12, D14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from airflow_obs_provider.engine.db import UnknownTenantError, ensure_tenant
from airflow_obs_provider.engine.window import parse_time
from airflow_obs_provider.jobs import age_refresh

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AT = "2026-03-01T00:10:00Z"


def _tenants(pg_url: str) -> list[str]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT code FROM dim_tenant ORDER BY code")
        return [r[0] for r in cur.fetchall()]


def _ledger_rows(pg_url: str) -> int:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM etl_job_run")
        return int(cur.fetchone()[0])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ})


def _config(tmp_path: Path, *codes: str) -> Path:
    path = tmp_path / "etl.yaml"
    tenants = [{"code": c, "source": {"kind": "local", "path": "oo", "org": "default"}} for c in codes]
    path.write_text(json.dumps({"tenants": tenants}))
    return path


def test_cli_age_refresh_of_an_unknown_tenant_without_config_fails_and_creates_nothing(pg_url: str) -> None:
    before, runs = _tenants(pg_url), _ledger_rows(pg_url)
    out = _cli("run", "age-refresh", "--tenant", "nosuch", "--at", AT, "--pg-url", pg_url)
    assert out.returncode == 1, out
    assert "unknown tenant 'nosuch'" in out.stderr and "'default'" in out.stderr, out.stderr
    assert "--config" in out.stderr, "the message says how to name a configured tenant"
    assert _tenants(pg_url) == before
    assert _ledger_rows(pg_url) == runs


def test_cli_age_refresh_with_a_config_creates_only_its_tenants(pg_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, "acme-d14", "globex-d14")
    out = _cli("run", "age-refresh", "--tenant", "acme-d14", "--at", AT, "--config", str(config), "--pg-url", pg_url)
    assert out.returncode == 0, out.stderr
    assert "acme-d14" in _tenants(pg_url)
    out = _cli("run", "age-refresh", "--tenant", "initech-d14", "--at", AT, "--config", str(config),
               "--pg-url", pg_url)
    assert out.returncode == 1 and "initech-d14" in out.stderr and "acme-d14" in out.stderr, out.stderr
    assert "initech-d14" not in _tenants(pg_url)


def test_existing_and_default_tenants_need_no_config(pg_url: str) -> None:
    """Tenants created earlier by configured runs keep working without a config, as does ``default``."""
    assert age_refresh.run("default", parse_time(AT), pg_url=pg_url).status == "success"
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        created = ensure_tenant(cur, "umbrella-d14", configured=("umbrella-d14",))
    result = age_refresh.run("umbrella-d14", parse_time(AT), pg_url=pg_url)
    assert result.status == "success" and "umbrella-d14" in _tenants(pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        assert ensure_tenant(cur, "umbrella-d14") == created


def test_ensure_tenant_names_the_unknown_code_and_the_configured_ones(pg_url: str) -> None:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        with pytest.raises(UnknownTenantError, match=r"'typo'.*\['acme', 'globex'\]"):
            ensure_tenant(cur, "typo", configured=("globex", "acme"))
        conn.rollback()
        cur.execute("SELECT count(*) FROM dim_tenant WHERE code = 'typo'")
        assert cur.fetchone()[0] == 0
