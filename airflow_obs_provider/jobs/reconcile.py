"""``obs-etl reconcile``: rerun the ``oo-agg`` windows whose source gained late records.

One pass for one tenant:

1. One ledger query lists the tenant's successful ``oo-agg`` windows ending within
   ``late_horizon`` (default 5 h, OpenObserve's ``ZO_INGEST_ALLOWED_UPTO``) with the digest each
   recorded of what it read (``etl_job_run.source_digest``), and the failed ones that have a digest
   (a rerun failed; the rows and digest are still the last success's), so a later pass retries them.
2. :class:`..engine.late_data.ChangeScanner` compares every digest with the bucket today (one
   ``file_list`` query, or one LIST per hour prefix and stream); only files the digests do not
   know are looked at.
3. Each window that gained records (and lost none) is rerun through the job's own exactly-once
   window transaction (advisory lock, replace, ledger attempt), marked ``details.late_data``.
   A window closing 5-minute buckets recomputes ``service_call_5m`` and ``log_pattern_5m`` for
   them from all their data; the tenant's current ``age-refresh`` window is rerun when its
   active window reads a recomputed bucket (older refreshes are superseded by it).
4. Windows whose files changed without new records (compaction) only get their digest
   refreshed; windows that lost records are reported and left to the no-loss guard.

A pass with nothing new writes nothing but that digest bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_obs_provider.engine.aggregate.calls import closed_buckets
from airflow_obs_provider.engine.config import EtlConfig, load_config
from airflow_obs_provider.engine.db import connect, redact_url
from airflow_obs_provider.engine.late_data import ChangeScanner, WindowCheck, digest_span
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult, WindowTx, run_window
from airflow_obs_provider.engine.oo.bucket import BucketSource
from airflow_obs_provider.engine.oo.source import OOReadError, SourceSecrets, open_source
from airflow_obs_provider.engine.window import Window, from_us, parse_duration
from airflow_obs_provider.jobs import oo_agg

log = logging.getLogger(__name__)

# Successes, and failed reruns of windows that once succeeded (their digest and rows are the last
# success's: a later pass retries them while their source still holds more than that).
_CHECKED = """
SELECT r.window_from, r.window_to, r.source_digest, r.updated_at
FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id
WHERE r.job = %(job)s AND t.code = %(tenant)s AND r.window_to > %(since)s
  AND (r.status = 'success' OR (r.status = 'failed' AND r.source_digest IS NOT NULL))
ORDER BY r.window_from
"""

# Compaction bookkeeping: only when the row is still the success that was checked.
_REFRESH_DIGEST = """
UPDATE etl_job_run r SET source_digest = %(digest)s::jsonb
FROM dim_tenant t
WHERE t.id = r.tenant_id AND t.code = %(tenant)s AND r.job = %(job)s AND r.window_from = %(from)s
  AND r.window_to = %(to)s AND r.updated_at = %(updated_at)s
"""

_AGE_REFRESH_TARGET = """
SELECT s.applied_at FROM age_refresh_state s JOIN dim_tenant t ON t.id = s.tenant_id
JOIN etl_job_run r ON r.tenant_id = s.tenant_id AND r.job = 'age-refresh' AND r.window_to = s.applied_at
                  AND r.status = 'success'
WHERE t.code = %(tenant)s
"""


@dataclass(frozen=True)
class LateWindow:
    window: Window
    check: WindowCheck


@dataclass
class Rerun:
    job: str
    window: Window
    status: str  # success / skipped / failed
    error: str | None = None


@dataclass
class ReconcileReport:
    tenant: str
    horizon: timedelta
    since: datetime
    mode: str = "-"  # file_list / listing / unsupported
    checked: int = 0
    unchanged: int = 0
    compacted: int = 0
    no_digest: int = 0  # successes written before digests existed, or from the API source
    changed: list[LateWindow] = field(default_factory=list)
    shrunk: list[LateWindow] = field(default_factory=list)
    unreadable: list[tuple[Window, str]] = field(default_factory=list)  # a new file could not be counted
    reruns: list[Rerun] = field(default_factory=list)
    queries: int = 0  # warehouse statements (excluding the reruns themselves)
    list_calls: int = 0
    file_list_queries: int = 0
    files_read: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    note: str | None = None

    @property
    def late_windows(self) -> int:
        return len(self.changed)

    @property
    def late_records(self) -> int:
        return sum(c.check.late_records for c in self.changed)

    @property
    def ok(self) -> bool:
        return not self.unreadable and all(r.status != "failed" for r in self.reruns)


def _late_details(check: WindowCheck, at: datetime) -> dict[str, Any]:
    return {"reconciled_at": at.isoformat(), "old_records": check.old_records, "new_records": check.new_records,
            "late_records": check.late_records,
            "streams": {f"{s.stream_type}/{s.stream}": [s.old_records, s.new_records] for s in check.grown}}


def _rerun_oo_agg(cfg: EtlConfig, tenant: str, late: LateWindow, *, pg_url: str | None, secrets: SourceSecrets,
                  run_info: RunInfo | None, now: datetime) -> WindowResult:
    body = oo_agg.window_body(cfg, tenant, late.window, secrets=secrets)

    def marked(tx: WindowTx) -> None:
        body(tx)
        tx.details["late_data"] = _late_details(late.check, now)

    return run_window(oo_agg.JOB, tenant, late.window, marked, pg_url=pg_url, run_info=run_info)


def reconcile(cfg: EtlConfig, tenant: str, *, pg_url: str | None = None, horizon: timedelta | None = None,
              now: datetime | None = None, secrets: SourceSecrets | None = None,
              run_info: RunInfo | None = None) -> ReconcileReport:
    """Check ``tenant``'s recent successful ``oo-agg`` windows for late records and rerun those that gained some."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    moment = now or datetime.now(UTC)
    tcfg = cfg.tenant(tenant)
    opts = oo_agg.AggOptions.from_job(cfg.job(oo_agg.JOB))
    horizon = opts.late_horizon if horizon is None else horizon
    secrets = secrets or SourceSecrets.from_env()
    report = ReconcileReport(tenant, horizon, moment - horizon)
    source = open_source(tcfg.source, base_dir=cfg.base_dir, secrets=secrets)
    if not isinstance(source, BucketSource):
        report.mode, report.note = "unsupported", ("the API source names no files: late records are not detected "
                                                   "(use a bucket source, or obs_backfill with reprocess)")
        return report

    conn = connect(pg_url, autocommit=True, application_name="obs-etl reconcile")
    try:
        with conn.cursor() as cur:
            cur.execute(_CHECKED, {"job": oo_agg.JOB, "tenant": tenant, "since": report.since})
            report.queries += 1
            rows = cur.fetchall()
        digests = [r[2] for r in rows if r[2]]
        span = digest_span(digests)
        scanner = ChangeScanner(source, span or (0, 0))
        report.mode = scanner.mode
        for w_from, w_to, digest, updated_at in rows:
            report.checked += 1
            if not digest:
                report.no_digest += 1
                continue
            try:
                check = scanner.check(digest)
            except OOReadError as exc:  # e.g. an object still being written: the next pass looks again
                report.unreadable.append((Window(w_from, w_to), str(exc).splitlines()[0][:300]))
                continue
            verdict = check.verdict
            late = LateWindow(Window(w_from, w_to), check)
            if verdict == "grown":
                report.changed.append(late)
            elif verdict == "shrunk":
                report.shrunk.append(late)
            elif verdict == "compacted":
                report.compacted += 1
                with conn.cursor() as cur:
                    cur.execute(_REFRESH_DIGEST, {"digest": json.dumps(check.refreshed), "tenant": tenant,
                                                  "job": oo_agg.JOB, "from": w_from, "to": w_to,
                                                  "updated_at": updated_at})
                    report.queries += 1
            else:
                report.unchanged += 1
        report.list_calls, report.file_list_queries = scanner.cost.list_calls, scanner.cost.file_list_queries
        report.files_read = scanner.cost.files_read

        recomputed: list[tuple[int, int]] = []
        for late in report.changed:
            try:
                result = _rerun_oo_agg(cfg, tenant, late, pg_url=pg_url, secrets=secrets, run_info=run_info,
                                       now=moment)
                report.reruns.append(Rerun(oo_agg.JOB, late.window, result.status))
                buckets = closed_buckets(late.window.start_us, late.window.end_us)
                if buckets and result.status == "success":
                    recomputed.append(buckets)
            except Exception as exc:  # one failed window must not stop the others; the ledger has the error
                text = _failure_text(exc)
                log.warning("reconcile %s: rerun of %s failed: %s", tenant, late.window, text)
                report.reruns.append(Rerun(oo_agg.JOB, late.window, "failed", text))
        if recomputed:
            _rerun_age_refresh(cfg, tenant, recomputed, conn, report, pg_url=pg_url, run_info=run_info)
    finally:
        conn.close()
    report.seconds, report.cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    return report


def _rerun_age_refresh(cfg: EtlConfig, tenant: str, buckets: list[tuple[int, int]], conn: Any,
                       report: ReconcileReport, *, pg_url: str | None, run_info: RunInfo | None) -> None:
    """Rerun the tenant's current graph refresh when its active window reads a recomputed bucket."""
    from airflow_obs_provider.jobs import age_refresh
    from airflow_obs_provider.orchestration.backfill import active_window_length

    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('age_refresh_state') IS NOT NULL")
        if not cur.fetchone()[0]:
            return
        cur.execute(_AGE_REFRESH_TARGET, {"tenant": tenant})
        report.queries += 2
        row = cur.fetchone()
    if row is None:
        return
    applied_at = row[0]
    length = active_window_length(cfg)
    active = Window(applied_at - length, applied_at)
    if not any(from_us(lo) < active.end and from_us(hi) > active.start for lo, hi in buckets):
        return
    try:
        result = age_refresh.run(tenant, applied_at, pg_url=pg_url, run_info=run_info, active_window=length)
        report.reruns.append(Rerun(age_refresh.JOB, result.window, result.status))
    except Exception as exc:
        text = _failure_text(exc)
        log.warning("reconcile %s: age-refresh rerun at %s failed: %s", tenant, applied_at, text)
        report.reruns.append(Rerun(age_refresh.JOB, active, "failed", text))


def _failure_text(exc: BaseException) -> str:
    """A failed rerun's error as printed and logged: its first line, credentials masked."""
    lines = redact_url(str(exc)).splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def format_report(report: ReconcileReport) -> list[str]:
    lines = [f"reconcile {report.tenant}: checked {report.checked} oo-agg windows ending after "
             f"{report.since:%Y-%m-%d %H:%M:%S} UTC (horizon {report.horizon}) through {report.mode}"]
    if report.note:
        lines.append(f"  {report.note}")
    lines.append(f"  unchanged {report.unchanged}, compaction only {report.compacted} (digest refreshed), "
                 f"gained records {len(report.changed)}, lost records {len(report.shrunk)}, "
                 f"no digest {report.no_digest}")
    for late in report.changed:
        streams = ", ".join(f"{s.stream_type}/{s.stream} {s.old_records}->{s.new_records}" for s in late.check.grown)
        lines.append(f"  changed {late.window}: records {late.check.old_records} -> {late.check.new_records} "
                     f"({streams})")
    for late in report.shrunk:
        streams = ", ".join(f"{s.stream_type}/{s.stream} {s.old_records}->{s.new_records}" for s in late.check.shrunk)
        lines.append(f"  fewer records {late.window}: {late.check.old_records} -> {late.check.new_records} "
                     f"({streams}); not rerun (the source lost data: see the no-loss guard)")
    for window, error in report.unreadable:
        lines.append(f"  not checked {window}: {error}")
    for r in report.reruns:
        lines.append(f"  reran {r.job} {r.window}: {r.status}" + (f" ({r.error})" if r.error else ""))
    lines.append(f"  cost: {report.list_calls} LIST calls, {report.file_list_queries} file_list queries, "
                 f"{report.files_read} new files read, {report.queries} ledger statements, {report.seconds:.3f}s wall, "
                 f"{report.cpu_seconds:.3f}s CPU")
    return lines


def cli_reconcile(args: argparse.Namespace) -> int:
    """``obs-etl reconcile --config FILE --tenant CODE [--horizon 5h] [--pg-url URL]``: 0 when every rerun succeeded."""
    cfg = load_config(args.config)
    horizon = parse_duration(args.horizon) if args.horizon else None
    report = reconcile(cfg, args.tenant, pg_url=args.pg_url, horizon=horizon)
    print("\n".join(format_report(report)))
    if not report.ok:
        print(f"reconcile {args.tenant}: {sum(r.status == 'failed' for r in report.reruns)} rerun(s) failed, "
              f"{len(report.unreadable)} window(s) could not be checked", file=sys.stderr)
        return 1
    return 0
