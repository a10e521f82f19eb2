"""Backfill planning against the real ledger: windows already successful are left out, by each job's key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_obs_provider.engine.config import parse_config
from airflow_obs_provider.engine.ledger import run_window
from airflow_obs_provider.engine.window import Window, parse_time
from airflow_obs_provider.orchestration.backfill import drop_successful, parse_request, plan_windows

pytestmark = pytest.mark.integration

CFG = parse_config({"tenants": [{"code": "acme", "source": {"kind": "local", "path": "d"}}],
                    "jobs": {"age-refresh": {"active_window": "15m"}}})
T0 = parse_time("2026-02-01T10:00:00Z")
KNOWN = ("acme", "globex")  # the tenants the ledger rows are written for


def test_successful_minutes_are_left_out_and_failed_or_skipped_ones_kept(pg_url: str) -> None:
    minute = timedelta(minutes=1)
    run_window("oo-agg", "acme", Window(T0, T0 + minute), lambda tx: None, pg_url=pg_url, configured_tenants=KNOWN)
    run_window("oo-agg", "acme", Window(T0 + minute, T0 + 2 * minute), lambda tx: tx.skip("before initial lookback"),
               pg_url=pg_url, configured_tenants=KNOWN)
    run_window("oo-agg", "globex", Window(T0 + 2 * minute, T0 + 3 * minute), lambda tx: None, pg_url=pg_url,
               configured_tenants=KNOWN)
    planned = plan_windows(parse_request({"job": "oo-agg", "tenant": "acme", "from": T0.isoformat(),
                                          "to": (T0 + 3 * minute).isoformat()}, CFG), CFG)
    remaining, dropped = drop_successful(planned, CFG, pg_url=pg_url)
    assert dropped == 1
    assert [p.window.start for p in remaining] == [T0 + minute, T0 + 2 * minute]  # other tenants don't count


def test_age_refresh_windows_match_the_ledger_by_their_active_window(pg_url: str) -> None:
    # age-refresh records [T - active_window, T) for a refresh at T.
    end = T0 + timedelta(minutes=10)
    run_window("age-refresh", "acme", Window(end - timedelta(minutes=15), end), lambda tx: None, pg_url=pg_url,
               configured_tenants=KNOWN)
    planned = plan_windows(parse_request({"job": "age-refresh", "tenant": "acme", "from": T0.isoformat(),
                                          "to": (T0 + timedelta(minutes=15)).isoformat()}, CFG), CFG)
    assert [p.window.end for p in planned] == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]
    remaining, dropped = drop_successful(planned, CFG, pg_url=pg_url)
    assert dropped == 1
    assert [p.window.end for p in remaining] == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=15)]
