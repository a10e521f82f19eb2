"""``obs-etl status``: per job and tenant, how far the ledger has come and what went wrong lately.

Reads only ``etl_job_run`` (and the circuit breaker table): the latest successful
window, the lag of its end behind now (in steady state about ``delay`` plus one
window, since a window runs once ``end + delay`` has passed), and the failed or
skipped windows of the last 24 hours with their errors and reasons, and the windows rerun in the
last 24 hours because their source gained late records (``obs-etl reconcile``). The expected
lag comes from the configuration in ``OBS_ETL_CONFIG`` when set, else the defaults.
Windows ending beyond now + clock skew (written by versions that accepted any time) are
not "latest": they are listed as ignored.

Exit codes (for cron checks): 0 when nothing needs attention (also while merely BEHIND
without failures), 2 when any job and tenant has a failed window ending in the last 24
hours, an open circuit breaker, or failures and no successful window at all; 1 when the
status cannot be read (no database, not bootstrapped).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from airflow_obs_provider.engine.db import connect, redact_url, require_schema
from airflow_obs_provider.engine.window import future_horizon
from airflow_obs_provider.orchestration.schedule import schedule_settings

RECENT = timedelta(hours=24)
SHOWN_FAILURES = 5


@dataclass
class Problem:
    window_from: datetime
    window_to: datetime
    status: str
    attempts: int
    text: str


@dataclass
class LateRerun:
    """A window rerun by ``obs-etl reconcile`` because its source gained late records."""

    window_from: datetime
    window_to: datetime
    finished_at: datetime
    old_records: int
    new_records: int


@dataclass
class JobTenantStatus:
    job: str
    tenant: str
    latest_from: datetime | None
    latest_to: datetime | None
    lag: timedelta | None
    expected_lag: timedelta | None
    successes_24h: int = 0
    failed_24h: int = 0
    skipped_24h: int = 0
    running: int = 0
    failed_total: int = 0
    future: int = 0  # windows ending beyond now + clock skew: ignored
    circuit_open_since: datetime | None = None
    failures: list[Problem] = field(default_factory=list)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    late_reruns: list[LateRerun] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        """Recent failures, an open circuit, or failures without any success: ``status`` exits 2."""
        return bool(self.circuit_open_since is not None or self.failed_24h
                    or (self.latest_to is None and self.failed_total))

    @property
    def state(self) -> str:
        parts = []
        if self.circuit_open_since is not None:
            parts.append("CIRCUIT OPEN")
        if self.latest_to is None:
            parts.append("no success yet")
        elif self.expected_lag is not None and self.lag is not None and self.lag > 2 * self.expected_lag:
            parts.append("BEHIND")
        if self.failed_24h or (self.latest_to is None and self.failed_total):
            parts.append("failures")
        return ", ".join(parts) or "ok"


_SUMMARY = """
SELECT r.job, t.code,
       max(r.window_to) FILTER (WHERE r.status = 'success' AND r.window_to <= %(horizon)s) AS latest_to,
       (array_agg(r.window_from ORDER BY r.window_to DESC, r.window_from DESC)
          FILTER (WHERE r.status = 'success' AND r.window_to <= %(horizon)s))[1] AS latest_from,
       count(*) FILTER (WHERE r.status = 'success' AND r.window_to > %(since)s
                        AND r.window_to <= %(horizon)s) AS ok_recent,
       count(*) FILTER (WHERE r.status = 'failed' AND r.window_to > %(since)s) AS failed_recent,
       count(*) FILTER (WHERE r.status = 'skipped' AND r.window_to > %(since)s) AS skipped_recent,
       count(*) FILTER (WHERE r.status = 'running') AS running,
       count(*) FILTER (WHERE r.status = 'failed') AS failed_total,
       count(*) FILTER (WHERE r.window_to > %(horizon)s) AS future
FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id
GROUP BY r.job, t.code ORDER BY r.job, t.code
"""

_PROBLEMS = """
SELECT r.job, t.code, r.window_from, r.window_to, r.status, r.attempts,
       coalesce(r.error, r.details->>'skipped_reason', '')
FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id
WHERE r.status IN ('failed', 'skipped') AND r.window_to > %(since)s
ORDER BY r.window_to DESC
"""

# Reruns are recent by when they ran: late records belong to windows up to the late horizon old.
_LATE_RERUNS = """
SELECT r.job, t.code, r.window_from, r.window_to, r.finished_at,
       (r.details->'late_data'->>'old_records')::bigint, (r.details->'late_data'->>'new_records')::bigint
FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id
WHERE r.details ? 'late_data' AND r.finished_at > %(since)s
ORDER BY r.finished_at DESC, r.window_from DESC
"""

_BREAKERS = """
SELECT b.job, t.code, b.opened_at FROM etl_circuit_breaker b JOIN dim_tenant t ON t.id = b.tenant_id
WHERE b.opened_at IS NOT NULL
"""


def _expected_lags() -> dict[str, timedelta]:
    settings = schedule_settings(None)
    return {name: job.delay + job.interval for name, job in settings.jobs.items()}


def collect_status(pg_url: str | None = None, *, now: datetime | None = None) -> list[JobTenantStatus]:
    moment = now or datetime.now(UTC)
    since = moment - RECENT
    expected = _expected_lags()
    conn = connect(pg_url, autocommit=True, application_name="obs-etl status")
    try:
        with conn.cursor() as cur:
            require_schema(cur)
            cur.execute(_SUMMARY, {"since": since, "horizon": future_horizon(moment)})
            rows: dict[tuple[str, str], JobTenantStatus] = {}
            for (job, tenant, latest_to, latest_from, ok, failed, skipped, running, failed_total,
                 future) in cur.fetchall():
                rows[(job, tenant)] = JobTenantStatus(
                    job=job, tenant=tenant, latest_from=latest_from, latest_to=latest_to,
                    lag=(moment - latest_to) if latest_to else None, expected_lag=expected.get(job),
                    successes_24h=ok, failed_24h=failed, skipped_24h=skipped, running=running,
                    failed_total=failed_total, future=future)
            cur.execute(_PROBLEMS, {"since": since})
            for job, tenant, w_from, w_to, status_text, attempts, text in cur.fetchall():
                entry = rows.get((job, tenant))
                if entry is None:
                    continue
                if status_text == "failed":
                    if len(entry.failures) < SHOWN_FAILURES:
                        entry.failures.append(Problem(w_from, w_to, status_text, attempts, _first_line(text)))
                else:
                    entry.skip_reasons[text.split(" (")[0] or "no reason recorded"] += 1
            cur.execute(_LATE_RERUNS, {"since": since})
            for job, tenant, w_from, w_to, finished, old, new in cur.fetchall():
                if (job, tenant) in rows:
                    rows[(job, tenant)].late_reruns.append(LateRerun(w_from, w_to, finished, old or 0, new or 0))
            cur.execute(_BREAKERS)  # bootstrap creates etl_circuit_breaker together with etl_job_run
            for job, tenant, opened_at in cur.fetchall():
                if (job, tenant) in rows:
                    rows[(job, tenant)].circuit_open_since = opened_at
    finally:
        conn.close()
    return list(rows.values())


def _first_line(text: str, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"


def _window_text(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"


def format_status(statuses: list[JobTenantStatus], *, now: datetime) -> list[str]:
    if not statuses:
        return ["the ledger (etl_job_run) is empty: no window has run yet"]
    header = ("job", "tenant", "latest successful window (UTC)", "lag", "expected", "ok 24h", "failed 24h",
              "skipped 24h", "state")
    table: list[tuple[str, ...]] = [header]
    for s in statuses:
        table.append((s.job, s.tenant, _window_text(s.latest_from, s.latest_to), format_duration(s.lag),
                      "~" + format_duration(s.expected_lag) if s.expected_lag else "-", str(s.successes_24h),
                      str(s.failed_24h), str(s.skipped_24h), s.state))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"obs-etl status at {now:%Y-%m-%d %H:%M:%S} UTC (failed/skipped: windows ending in the last 24 h)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    for s in statuses:
        if not (s.failures or s.skip_reasons or s.circuit_open_since or s.running or s.future
                or s.needs_attention or s.late_reruns):
            continue
        lines.append(f"{s.job} / {s.tenant}:")
        if s.circuit_open_since:
            lines.append(f"  circuit open since {s.circuit_open_since:%Y-%m-%d %H:%M:%S}: new windows are skipped; "
                         "clear a run's select_tenants task or change the tenant's config to reset it")
        if s.running:
            lines.append(f"  {s.running} window(s) running now (or left 'running' by a killed worker)")
        if s.future:
            lines.append(f"  {s.future} window(s) ending in the future (beyond now + clock skew): ignored; "
                         "written by a run with a wrong time")
        if s.latest_to is None and s.failed_total and not s.failed_24h:
            lines.append(f"  {s.failed_total} failed window(s), all older than 24 h, and no success yet")
        for p in s.failures:
            lines.append(f"  failed {_window_text(p.window_from, p.window_to)} after {p.attempts} attempt(s): "
                         f"{redact_url(p.text)}")  # rows written before masking got better
        if s.failed_24h > len(s.failures):
            lines.append(f"  ... and {s.failed_24h - len(s.failures)} more failed window(s)")
        for reason, count in s.skip_reasons.most_common():
            lines.append(f"  skipped {count} window(s): {redact_url(reason)}")
        if s.late_reruns:
            gained = sum(r.new_records - r.old_records for r in s.late_reruns)
            lines.append(f"  late data: {len(s.late_reruns)} window(s) rerun in the last 24 h "
                         f"(+{gained} records read)")
            for r in s.late_reruns[:SHOWN_FAILURES]:
                lines.append(f"    {_window_text(r.window_from, r.window_to)} at {r.finished_at:%Y-%m-%d %H:%M}: "
                             f"records {r.old_records} -> {r.new_records}")
            if len(s.late_reruns) > SHOWN_FAILURES:
                lines.append(f"    ... and {len(s.late_reruns) - SHOWN_FAILURES} more")
    return lines


def cli_status(args: argparse.Namespace) -> int:
    """``obs-etl status [--pg-url URL]``: exit code 0, or 2 when any job and tenant needs attention
    (see the module doc)."""
    now = datetime.now(UTC)
    statuses = collect_status(getattr(args, "pg_url", None), now=now)
    print("\n".join(format_status(statuses, now=now)))
    return 2 if any(s.needs_attention for s in statuses) else 0
