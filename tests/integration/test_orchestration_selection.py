"""Tenant selection against the real ledger: initial lookback and the circuit breaker."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_obs_provider.engine.config import parse_config
from airflow_obs_provider.engine.db import connect
from airflow_obs_provider.engine.ledger import WindowTx, run_window
from airflow_obs_provider.engine.window import Window, floor_time
from airflow_obs_provider.orchestration.selection import (
    REASON_CIRCUIT_OPEN,
    REASON_LOOKBACK,
    CircuitOpenEvent,
    select_tenants,
)

pytestmark = pytest.mark.integration

NOW = floor_time(datetime.now(UTC), timedelta(minutes=1))
MINUTE = timedelta(minutes=1)


def config(threshold: int = 3, path: str = "data", callback: str | None = None) -> Any:
    job: dict[str, Any] = {"initial_lookback": "2h", "failure_threshold": threshold}
    if callback:
        job["circuit_open_callback"] = callback
    return parse_config({
        "tenants": [
            {"code": "acme", "source": {"kind": "local", "path": path}, "terraform": {"state": "tf.json"}},
            {"code": "globex", "source": {"kind": "local", "path": "other"}},
            {"code": "sleepy", "source": {"kind": "local", "path": "x"}, "enabled": False},
        ],
        "jobs": {"oo-agg": job, "topo-iac": {"initial_lookback": "2h"}},
    })


def window(minutes_ago: int) -> Window:
    start = NOW - minutes_ago * MINUTE
    return Window(start, start + MINUTE)


def succeed(pg_url: str, tenant: str, w: Window, job: str = "oo-agg") -> None:
    run_window(job, tenant, w, lambda tx: None, pg_url=pg_url, configured_tenants=(tenant,))


def fail(pg_url: str, tenant: str, w: Window, job: str = "oo-agg") -> None:
    def body(tx: WindowTx) -> None:
        raise RuntimeError(f"source unreachable for {tenant}")

    with pytest.raises(RuntimeError):
        run_window(job, tenant, w, body, pg_url=pg_url, configured_tenants=(tenant,))


def ledger(pg_url: str, tenant: str, w: Window, job: str = "oo-agg") -> tuple[str, dict[str, Any]] | None:
    conn = connect(pg_url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT r.status, r.details FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id "
                    "WHERE r.job = %s AND t.code = %s AND r.window_from = %s AND r.window_to = %s",
                    (job, tenant, w.start, w.end))
        row = cur.fetchone()
    conn.close()
    return None if row is None else (row[0], row[1])


def test_new_tenant_skips_windows_before_the_initial_lookback(pg_url: str) -> None:
    cfg = config()
    old, recent = window(3 * 60), window(30)
    sel = select_tenants(cfg, "oo-agg", old, pg_url=pg_url, now=NOW)
    assert sel.tenants == []
    assert sel.skipped["acme"].startswith(REASON_LOOKBACK)
    status, details = ledger(pg_url, "acme", old) or ("", {})
    assert status == "skipped" and details["skipped_reason"].startswith(REASON_LOOKBACK)
    # Disabled tenants are neither run nor recorded.
    assert "sleepy" not in sel.skipped and ledger(pg_url, "sleepy", old) is None
    assert select_tenants(cfg, "oo-agg", recent, pg_url=pg_url, now=NOW).tenants == ["acme", "globex"]


def test_once_a_tenant_has_a_success_old_windows_run_again(pg_url: str) -> None:
    cfg = config()
    succeed(pg_url, "globex", window(20))
    sel = select_tenants(cfg, "oo-agg", window(5 * 60), pg_url=pg_url, now=NOW)
    assert "globex" in sel.tenants
    assert "acme" in sel.skipped  # acme still has no successful window


def test_topology_runs_only_tenants_with_that_source(pg_url: str) -> None:
    sel = select_tenants(config(), "topo-iac", window(10), pg_url=pg_url, now=NOW)
    assert sel.tenants == ["acme"] and sel.skipped == {}


def test_circuit_opens_after_threshold_failures_fires_once_and_resets_on_rerun(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A user callback named in the config, importable like any alerting module.
    (tmp_path / "obs_alerts_for_test.py").write_text(
        "EVENTS = []\n\ndef on_open(event):\n    EVENTS.append(event)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config(threshold=3, callback="obs_alerts_for_test:on_open")
    hooked: list[CircuitOpenEvent] = []

    succeed(pg_url, "acme", window(60))
    # The breaker remembers the configuration it last saw (this one, with the callback).
    assert select_tenants(cfg, "oo-agg", window(51), pg_url=pg_url, now=NOW).tenants == ["acme", "globex"]
    for ago in (50, 49, 48):
        fail(pg_url, "acme", window(ago))
    succeed(pg_url, "globex", window(48))

    first = select_tenants(cfg, "oo-agg", window(47), pg_url=pg_url, now=NOW, on_circuit_open=hooked.append)
    assert first.tenants == ["globex"]  # one broken tenant never blocks another
    assert first.skipped == {"acme": REASON_CIRCUIT_OPEN}
    assert [(e.tenant, e.consecutive_failures, e.threshold) for e in hooked] == [("acme", 3, 3)]
    assert "source unreachable for acme" in (hooked[0].last_error or "")
    assert ledger(pg_url, "acme", window(47)) == ("skipped", {"skipped_reason": REASON_CIRCUIT_OPEN})
    user_events = sys.modules["obs_alerts_for_test"].EVENTS
    assert [e.tenant for e in user_events] == ["acme"]

    second = select_tenants(cfg, "oo-agg", window(46), pg_url=pg_url, now=NOW, on_circuit_open=hooked.append)
    assert second.skipped == {"acme": REASON_CIRCUIT_OPEN}
    assert len(hooked) == 1 and len(user_events) == 1  # alerts fire when it opens, not on every window

    # A window that already succeeded keeps its status even while the circuit is open.
    succeed(pg_url, "acme", window(70))
    select_tenants(cfg, "oo-agg", window(70), pg_url=pg_url, now=NOW)
    assert ledger(pg_url, "acme", window(70))[0] == "success"  # type: ignore[index]

    # Clearing the run makes the selection task run again (try 2): the breaker resets.
    cleared = select_tenants(cfg, "oo-agg", window(46), pg_url=pg_url, now=NOW, try_number=2)
    assert cleared.tenants == ["acme", "globex"]
    # Failures from before the reset no longer count for later windows.
    assert select_tenants(cfg, "oo-agg", window(45), pg_url=pg_url, now=NOW).tenants == ["acme", "globex"]

    # New failures open it again ...
    for ago in (44, 43, 42):
        fail(pg_url, "acme", window(ago))
    assert select_tenants(cfg, "oo-agg", window(41), pg_url=pg_url, now=NOW,
                          on_circuit_open=hooked.append).skipped == {"acme": REASON_CIRCUIT_OPEN}
    assert len(hooked) == 2
    # ... and a configuration change of that tenant closes it.
    changed = config(threshold=3, path="fixed-data")
    assert select_tenants(changed, "oo-agg", window(40), pg_url=pg_url, now=NOW).tenants == ["acme", "globex"]


def test_a_success_ends_the_run_of_failures(pg_url: str) -> None:
    cfg = config(threshold=2)
    for ago in (30, 29):
        fail(pg_url, "globex", window(ago), job="topo-iac")
    for ago in (30, 29):
        fail(pg_url, "acme", window(ago), job="topo-iac")
    succeed(pg_url, "acme", window(28), job="topo-iac")  # e.g. its failed task was cleared and passed
    sel = select_tenants(cfg, "topo-iac", window(27), pg_url=pg_url, now=NOW)
    assert sel.tenants == ["acme"]
