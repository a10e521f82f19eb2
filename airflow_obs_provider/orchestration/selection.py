"""Which tenants a scheduled window runs for: initial lookback and the circuit breaker.

Runs at task time (never at parse time) against our own Postgres ledger, never
Airflow's metadata DB. For each enabled tenant that configures the job's source:

1. Initial lookback: a tenant with no successful window of this job starts
   ``initial_lookback`` before now. Windows that end before that point are
   recorded ``skipped`` (reason ``before initial lookback``) and not run, so a
   new tenant or a DAG with an old start date does not replay all history.
   ``obs_backfill`` can still fill them on purpose.
2. Circuit breaker: once the latest ``failure_threshold`` finished windows of
   (job, tenant) all failed, the tenant is left out (recorded ``skipped``,
   reason ``circuit open``) and the open callback fires once. Failures count
   only when recorded after the breaker's ``reset_at``; the breaker resets when
   - the selection task runs again for a window (try_number > 1: a clear of
     the run or of that task; also an automatic retry of that task), or
   - the tenant's or the job's configuration changes (``config_hash``), or
   - a window of that tenant succeeds (e.g. its failed task was cleared and
     passed): a success ends the run of consecutive failures.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from airflow_obs_provider.engine.config import ConfigError, EtlConfig, JobConfig, TenantConfig
from airflow_obs_provider.engine.db import connect, ensure_tenant, require_schema
from airflow_obs_provider.engine.job_names import SPLIT_RUN_JOBS, TOPOLOGY_SOURCE_BY_JOB
from airflow_obs_provider.engine.ledger import RunInfo, run_window
from airflow_obs_provider.engine.window import Window, future_horizon

log = logging.getLogger(__name__)
T = TypeVar("T")

REASON_LOOKBACK = "before initial lookback"
REASON_CIRCUIT_OPEN = "circuit open"



@dataclass(frozen=True)
class CircuitOpenEvent:
    """Handed to the user's ``circuit_open_callback`` when a breaker opens."""

    job: str
    tenant: str
    window_from: datetime
    window_to: datetime
    consecutive_failures: int
    threshold: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass
class Selection:
    """The outcome for one window: tenants to run, and why the others were left out."""

    job: str
    window: Window
    tenants: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    opened: list[CircuitOpenEvent] = field(default_factory=list)


def tenants_for_job(cfg: EtlConfig, job: str) -> list[TenantConfig]:
    """Enabled tenants that configure what ``job`` reads."""
    block = TOPOLOGY_SOURCE_BY_JOB.get(job)  # oo-agg and age-refresh run for every enabled tenant
    return [t for t in cfg.tenants if t.enabled and (block is None or bool(getattr(t, block)))]


def in_batches(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive batches of ``size`` (the last may be shorter): what one task instance runs."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def config_hash(tenant: TenantConfig, job: JobConfig) -> str:
    """A stable digest of everything that shapes a tenant's work for a job (a change resets the breaker)."""
    payload = json.dumps({"tenant": asdict(tenant), "job": asdict(job)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_callable(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (or ``package.module.function``), naming what failed."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"callback {path!r} must look like 'package.module:function'")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"callback {path!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise ConfigError(f"callback {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def select_tenants(
    cfg: EtlConfig,
    job: str,
    window: Window,
    *,
    pg_url: str | None,
    try_number: int = 1,
    run_info: RunInfo | None = None,
    now: datetime | None = None,
    on_circuit_open: Callable[[CircuitOpenEvent], None] | None = None,
) -> Selection:
    """Decide the tenants of one window, recording left-out windows as ``skipped`` in the ledger."""
    job_cfg = cfg.job(job)
    moment = now or datetime.now(UTC)
    selection = Selection(job=job, window=window)
    for tenant in tenants_for_job(cfg, job):
        reason, event = _decide(tenant, job_cfg, window, pg_url=pg_url, try_number=try_number, now=moment)
        if reason is None:
            selection.tenants.append(tenant.code)
            continue
        selection.skipped[tenant.code] = reason
        for part in _ledger_windows(window, job_cfg):
            _record_skip(job, tenant.code, part, reason, pg_url=pg_url, run_info=run_info)
        if event is not None:
            selection.opened.append(event)
            log.error("circuit opened for %s/%s after %d failed windows (last error: %s)",
                      job, tenant.code, event.consecutive_failures, event.last_error)
            _fire(event, job_cfg, on_circuit_open)
    return selection


def _decide(
    tenant: TenantConfig, job: JobConfig, window: Window, *, pg_url: str | None, try_number: int, now: datetime
) -> tuple[str | None, CircuitOpenEvent | None]:
    conn = connect(pg_url, application_name=f"obs-etl select {job.name}")
    try:
        with conn.cursor() as cur:
            require_schema(cur)
            tenant_id = ensure_tenant(cur, tenant.code, tenant.name, configured=(tenant.code,))
            if not _has_success(cur, job.name, tenant_id) and window.end <= now - job.initial_lookback:
                conn.commit()
                return f"{REASON_LOOKBACK} ({job.initial_lookback} before {now.isoformat()})", None
            reason, event = _breaker(cur, tenant, job, window, tenant_id, try_number=try_number)
        conn.commit()
        return reason, event
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _has_success(cur: Any, job: str, tenant_id: int) -> bool:
    cur.execute("SELECT 1 FROM etl_job_run WHERE job = %s AND tenant_id = %s AND status = 'success' "
                "AND window_to <= %s LIMIT 1",
                (job, tenant_id, future_horizon()))
    return cur.fetchone() is not None


def _breaker(
    cur: Any, tenant: TenantConfig, job: JobConfig, window: Window, tenant_id: int, *, try_number: int
) -> tuple[str | None, CircuitOpenEvent | None]:
    digest = config_hash(tenant, job)
    cur.execute(
        "INSERT INTO etl_circuit_breaker (job, tenant_id, config_hash) VALUES (%s, %s, %s) "
        "ON CONFLICT (job, tenant_id) DO NOTHING", (job.name, tenant_id, digest))
    # Row lock: concurrent windows of one tenant decide one after the other.
    cur.execute("SELECT config_hash, reset_at, opened_at FROM etl_circuit_breaker "
                "WHERE job = %s AND tenant_id = %s FOR UPDATE", (job.name, tenant_id))
    stored_hash, reset_at, opened_at = cur.fetchone()
    if try_number > 1 or stored_hash != digest:
        why = "rerun of the selection task" if try_number > 1 else "configuration changed"
        if opened_at is not None or stored_hash != digest:
            log.info("circuit breaker of %s/%s reset: %s", job.name, tenant.code, why)
        cur.execute("UPDATE etl_circuit_breaker SET config_hash = %s, reset_at = now(), opened_at = NULL, "
                    "consecutive_failures = 0, updated_at = now() WHERE job = %s AND tenant_id = %s",
                    (digest, job.name, tenant_id))
        return None, None
    failures, last_error = _consecutive_failures(cur, job, tenant_id, reset_at)
    is_open = failures >= job.failure_threshold
    cur.execute("UPDATE etl_circuit_breaker SET consecutive_failures = %s, last_error = %s, "
                "opened_at = CASE WHEN %s THEN coalesce(opened_at, now()) END, updated_at = now() "
                "WHERE job = %s AND tenant_id = %s",
                (failures, last_error, is_open, job.name, tenant_id))
    if not is_open:
        return None, None
    event = None
    if opened_at is None:  # this window opens it: alert once, not on every skipped window
        event = CircuitOpenEvent(job.name, tenant.code, window.start, window.end, failures,
                                 job.failure_threshold, last_error)
    return REASON_CIRCUIT_OPEN, event


def _consecutive_failures(cur: Any, job: JobConfig, tenant_id: int, reset_at: datetime) -> tuple[int, str | None]:
    """Leading failed windows among the latest finished ones, counting only failures after the reset."""
    cur.execute(
        "SELECT status, error, updated_at FROM etl_job_run WHERE job = %s AND tenant_id = %s "
        "AND status IN ('success', 'failed') AND window_to <= %s ORDER BY window_to DESC LIMIT %s",
        (job.name, tenant_id, future_horizon(), max(job.failure_threshold, 1)))  # future rows: see window.py
    count, last_error = 0, None
    for status, error, updated_at in cur.fetchall():
        if status != "failed" or updated_at <= reset_at:
            break
        count += 1
        last_error = last_error or error
    return count, last_error


def _ledger_windows(span: Window, job: JobConfig) -> list[Window]:
    """The windows a run's span holds (an oo-agg ``run_every`` covers several ``interval`` windows)."""
    if job.name in SPLIT_RUN_JOBS and span.end - span.start > job.interval:
        return list(span.split(job.interval))
    return [span]


def _record_skip(job: str, tenant: str, window: Window, reason: str, *, pg_url: str | None,
                 run_info: RunInfo | None) -> None:
    """Record the left-out window in the ledger, never overwriting a window that already succeeded."""
    conn = connect(pg_url, autocommit=True, application_name=f"obs-etl select {job}")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id "
                        "WHERE r.job = %s AND t.code = %s AND r.window_from = %s AND r.window_to = %s",
                        (job, tenant, window.start, window.end))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is not None and row[0] == "success":
        return
    run_window(job, tenant, window, lambda tx: tx.skip(reason), pg_url=pg_url, run_info=run_info,
               configured_tenants=(tenant,))  # a tenant of the configuration (select_tenants)


def _fire(event: CircuitOpenEvent, job: JobConfig, hook: Callable[[CircuitOpenEvent], None] | None) -> None:
    """Call the Airflow-side hook (Stats) and the user's ``circuit_open_callback``; a broken callback only logs."""
    targets: list[Callable[..., Any]] = [hook] if hook else []
    path = job.options.get("circuit_open_callback")
    try:
        if path:
            targets.append(load_callable(str(path)))
    except ConfigError:
        log.exception("jobs.%s.circuit_open_callback", job.name)
    for target in targets:
        try:
            target(event)
        except Exception:
            log.exception("circuit-open callback %r failed", target)


def summary_lines(selection: Selection) -> Iterable[str]:
    yield f"{selection.job} {selection.window}: running {selection.tenants or 'no tenant'}"
    for code, reason in sorted(selection.skipped.items()):
        yield f"  skipped {code}: {reason}"
