"""obs-etl status against a ledger populated through the real ledger code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from support.databases import create_database, drop_database

from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.ledger import WindowTx, run_window
from airflow_obs_provider.engine.window import Window, floor_time
from airflow_obs_provider.jobs.status import collect_status, format_duration, format_status

pytestmark = pytest.mark.integration

NOW = floor_time(datetime.now(UTC), timedelta(minutes=1))
MINUTE = timedelta(minutes=1)
KNOWN = ("acme", "globex", "initech")  # the configured tenants the ledger rows are for


def w(minutes_ago: int, width: int = 1) -> Window:
    start = NOW - minutes_ago * MINUTE
    return Window(start, start + width * MINUTE)


def broken(tx: WindowTx) -> None:
    raise ValueError("parquet footer corrupt in files/default/logs/app/x.parquet")


@pytest.fixture(scope="module")
def ledger_url(pg_url: str) -> str:
    for ago in (30, 20, 15):
        run_window("oo-agg", "acme", w(ago), lambda tx: None, pg_url=pg_url, configured_tenants=KNOWN)
    for ago in (14, 13):
        with pytest.raises(ValueError):
            run_window("oo-agg", "acme", w(ago), broken, pg_url=pg_url, configured_tenants=KNOWN)
    with pytest.raises(ValueError):  # a failure older than 24 h is not listed
        run_window("oo-agg", "acme", w(60 * 30), broken, pg_url=pg_url, configured_tenants=KNOWN)
    for ago in (600, 599):
        run_window("oo-agg", "globex", w(ago), lambda tx: tx.skip("before initial lookback (2h)"), pg_url=pg_url,
                   configured_tenants=KNOWN)
    run_window("age-refresh", "acme", w(25, width=5), lambda tx: None, pg_url=pg_url, configured_tenants=KNOWN)
    return pg_url


@pytest.fixture(autouse=True)
def default_expected_lags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBS_ETL_CONFIG", raising=False)  # expected lags from the defaults


def test_latest_window_lag_and_recent_problems_per_job_and_tenant(ledger_url: str) -> None:
    now = NOW + timedelta(seconds=30)
    by_key = {(s.job, s.tenant): s for s in collect_status(ledger_url, now=now)}
    assert set(by_key) == {("oo-agg", "acme"), ("oo-agg", "globex"), ("age-refresh", "acme")}
    acme = by_key[("oo-agg", "acme")]
    assert (acme.latest_from, acme.latest_to) == (w(15).start, w(15).end)
    assert acme.lag == now - w(15).end
    assert acme.expected_lag == timedelta(minutes=12) + MINUTE  # default delay + one window
    assert (acme.successes_24h, acme.failed_24h, acme.skipped_24h) == (3, 2, 0)
    assert [p.window_from for p in acme.failures] == [w(13).start, w(14).start]
    assert all("parquet footer corrupt" in p.text for p in acme.failures)
    assert acme.state == "failures"
    globex = by_key[("oo-agg", "globex")]
    assert globex.latest_to is None and globex.state == "no success yet"
    assert globex.skip_reasons == {"before initial lookback": 2}
    age = by_key[("age-refresh", "acme")]
    assert age.latest_to == w(25, width=5).end and age.failed_24h == 0


def test_formatted_report_names_windows_errors_and_reasons(ledger_url: str) -> None:
    now = NOW + timedelta(seconds=30)
    text = "\n".join(format_status(collect_status(ledger_url, now=now), now=now))
    assert f"{w(15).start:%Y-%m-%d %H:%M}-{w(15).end:%H:%M}" in text
    assert format_duration(now - w(15).end) in text
    assert "ValueError: parquet footer corrupt" in text
    assert "skipped 2 window(s): before initial lookback" in text
    assert text.count("failed ") >= 2


def test_cli_prints_the_report_and_signals_failures_in_its_exit_code(ledger_url: str) -> None:
    out = subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", "status", "--pg-url", ledger_url],
                         capture_output=True, text=True, env={**os.environ, "OBS_ETL_CONFIG": ""})
    print(out.stdout)
    assert out.returncode == 2, out.stderr
    assert "oo-agg" in out.stdout and "globex" in out.stdout and "failures" in out.stdout


def test_durations_read_naturally() -> None:
    assert format_duration(timedelta(seconds=75)) == "1m15s"
    assert format_duration(timedelta(hours=2, minutes=5)) == "2h05m"
    assert format_duration(timedelta(days=3, hours=1)) == "3d01h"
    assert format_duration(None) == "-"


@pytest.fixture(scope="module")
def breaker_url(pg_server_url: str) -> Iterator[str]:
    """A second ledger: one tenant whose breaker is open, two successes ending at the same time."""
    url = create_database(pg_server_url, "t_status_breaker")
    bootstrap(url)
    run_window("age-refresh", "initech", w(20, width=10), lambda tx: None, pg_url=url, configured_tenants=KNOWN)
    run_window("age-refresh", "initech", w(15, width=5), lambda tx: None, pg_url=url, configured_tenants=KNOWN)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO etl_circuit_breaker (job, tenant_id, config_hash, opened_at) "
                    "SELECT 'age-refresh', id, 'h', %s FROM dim_tenant WHERE code = 'initech'", (NOW - 3 * MINUTE,))
    conn.close()
    yield url
    drop_database(pg_server_url, url)


def test_open_circuit_breaker_is_reported_with_its_time(breaker_url: str) -> None:
    now = NOW + timedelta(seconds=30)
    (status,) = collect_status(breaker_url, now=now)
    assert (status.job, status.tenant) == ("age-refresh", "initech")
    assert status.circuit_open_since == NOW - 3 * MINUTE
    assert status.state == "CIRCUIT OPEN"
    text = "\n".join(format_status([status], now=now))
    assert f"circuit open since {NOW - 3 * MINUTE:%Y-%m-%d %H:%M:%S}" in text


def test_latest_window_of_equal_ends_is_the_one_starting_last(breaker_url: str) -> None:
    (status,) = collect_status(breaker_url, now=NOW)
    assert status.latest_to == w(10).start  # both windows end 10 minutes ago
    assert status.latest_from == w(15).start
    assert status.successes_24h == 2


def _cli_status(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airflow_obs_provider.cli", "status", "--pg-url", url],
                          capture_output=True, text=True, env={**os.environ, "OBS_ETL_CONFIG": ""})


@pytest.mark.parametrize("scenario", ["only-failed", "behind-with-failures", "old-failures-no-success",
                                      "behind-only", "future-success"])
def test_exit_code_says_whether_a_tenant_needs_attention(pg_server_url: str, scenario: str) -> None:
    """Exit 2 for any recent failure, an open circuit, or failures without a success (issue 12 D16)."""
    url = create_database(pg_server_url, "t_status_" + scenario.replace("-", "_"))
    try:
        bootstrap(url)
        if scenario == "only-failed":
            for ago in (30, 20):
                with pytest.raises(ValueError):
                    run_window("oo-agg", "acme", w(ago), broken, pg_url=url, configured_tenants=KNOWN)
        elif scenario == "behind-with-failures":
            run_window("oo-agg", "acme", w(600), lambda tx: None, pg_url=url, configured_tenants=KNOWN)  # 10 h behind
            with pytest.raises(ValueError):
                run_window("oo-agg", "acme", w(30), broken, pg_url=url, configured_tenants=KNOWN)
        elif scenario == "old-failures-no-success":
            with pytest.raises(ValueError):
                run_window("oo-agg", "acme", w(60 * 30), broken, pg_url=url, configured_tenants=KNOWN)
        elif scenario == "behind-only":
            run_window("oo-agg", "acme", w(600), lambda tx: None, pg_url=url, configured_tenants=KNOWN)
        else:  # a success "in 2099" (an older version accepted any time) must not hide the lag
            run_window("oo-agg", "acme", w(600), lambda tx: None, pg_url=url, configured_tenants=KNOWN)
            run_window("oo-agg", "acme", Window("2099-01-01T00:00:00Z", "2099-01-01T00:01:00Z"), lambda tx: None,
                       pg_url=url, configured_tenants=KNOWN)
        out = _cli_status(url)
        print(out.stdout)
        (status,) = collect_status(url)
        if scenario in ("behind-only", "future-success"):
            assert out.returncode == 0, out.stderr
            assert status.state == "BEHIND" and status.latest_to == w(600).end
        else:
            assert out.returncode == 2, out.stderr
            assert "failures" in status.state
        if scenario == "future-success":
            assert "1 window(s) ending in the future" in out.stdout
        if scenario == "old-failures-no-success":
            assert "no success yet" in out.stdout and "all older than 24 h" in out.stdout
    finally:
        drop_database(pg_server_url, url)
