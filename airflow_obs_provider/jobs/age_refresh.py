"""The age-refresh job: one exactly-once ledger window per refresh of the active call graph.

A refresh at T is the ledger window ``[T - 10 min, T)`` (the active window
itself, not the 5-minute schedule step): the window a run covers is the data it
reads, and consecutive refreshes' keys differ by T alone. Reruns of one T
redo the same refresh; a T older than the graph's applied T is recorded as
``skipped`` (see engine/age_graph.py).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from airflow_obs_provider.engine.age_graph import (
    DEFAULT_ACTIVE_WINDOW,
    JOB,
    active_window_ending,
    refresh_active_graph,
)
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult, run_window
from airflow_obs_provider.engine.window import parse_duration, parse_time, require_not_future

log = logging.getLogger(__name__)


def run(
    tenant: str,
    at: datetime,
    *,
    pg_url: str | None = None,
    run_info: RunInfo | None = None,
    active_window: timedelta = DEFAULT_ACTIVE_WINDOW,
    configured_tenants: Collection[str] = (),
) -> WindowResult:
    """Refresh ``tenant``'s active call graph for window end ``at`` (T).

    ``tenant`` must already be in ``dim_tenant`` unless it is in ``configured_tenants``
    (the codes of the ETL configuration, when there is one) or is ``default``.
    """
    if not tenant or not tenant.strip():
        raise ValueError("tenant code is empty: pass the dim_tenant code (e.g. --tenant default)")
    require_not_future(at, "age-refresh window end T (--at / data_interval_end)")
    window = active_window_ending(parse_time(at), active_window)
    result = run_window(JOB, tenant, window, refresh_active_graph, pg_url=pg_url, run_info=run_info,
                        configured_tenants=configured_tenants)
    missing = result.details.get("age_unavailable")
    if missing and result.status == "success":
        log.warning("Apache AGE unavailable (%s): kept only the relational table active_call_edge "
                    "(%d edges)", missing, result.rows_out)
    return result


def describe(result: WindowResult) -> str:
    """One line for logs and the CLI."""
    d = result.details
    if result.status == "skipped":
        return f"age-refresh {result.tenant_code} {result.window}: skipped ({d.get('skipped_reason')})"
    graph = (f"graph +{d.get('edges_created', 0)} ~{d.get('edges_updated', 0)} -{d.get('edges_deleted', 0)} edges, "
             f"+{d.get('vertices_created', 0)} -{d.get('vertices_deleted', 0)} vertices"
             if d.get("graph_mode") == "age" else f"relational only: {d.get('age_unavailable')}")
    return (f"age-refresh {result.tenant_code} {result.window}: {result.status}, {d.get('edges', 0)} active edges "
            f"({graph}) in {result.seconds:.3f}s")


def cli_run(args: argparse.Namespace) -> int:
    """``obs-etl run age-refresh --tenant CODE --at ISO [--config YAML] [--pg-url URL]``."""
    active_window = DEFAULT_ACTIVE_WINDOW
    configured: tuple[str, ...] = ()
    if args.config:  # optional: checks the tenant and reads jobs.age-refresh.active_window
        config = load_config(args.config)
        config.tenant(args.tenant)
        active_window = parse_duration(config.job(JOB).options.get("active_window", active_window))
        configured = config.tenant_codes
    # Without --config only tenants already in dim_tenant (and 'default') are refreshed.
    result = run(args.tenant, parse_time(args.at), pg_url=args.pg_url, active_window=active_window,
                 configured_tenants=configured)
    print(describe(result))
    return 0
