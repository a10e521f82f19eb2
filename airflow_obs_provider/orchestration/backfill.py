"""Backfill requests (``obs_backfill`` DAG conf): validation and aligned window planning.

A request ``{job, tenant, from, to, reprocess}`` becomes the job's aligned
windows covering ``[from, to)`` (``engine.window.split_range``). Windows that
already succeeded in the ledger are left out unless ``reprocess`` is true or
``"force"``; ``"force"`` also lets oo-agg rewrite a window from sharply fewer
records than its last success (raw data deleted on purpose: the ledger's shrink guard);
each remaining window carries the time it becomes eligible, so a task can wait
for it (rescheduling, not holding a worker) instead of reading data early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow_obs_provider.engine.config import ConfigError, EtlConfig
from airflow_obs_provider.engine.db import connect, require_schema
from airflow_obs_provider.engine.job_names import AGE_REFRESH, JOB_NAMES
from airflow_obs_provider.engine.window import Window, parse_duration, parse_time, split_range
from airflow_obs_provider.orchestration.selection import in_batches

# Airflow refuses to expand a mapped task over more items than [core] max_map_length (1024 by default).
MAX_WINDOWS = 1024


class BackfillRequestError(ValueError):
    """The backfill conf is unusable; the message names the field and the problem."""


@dataclass(frozen=True)
class BackfillRequest:
    job: str
    tenant: str
    start: datetime
    end: datetime
    reprocess: bool = False
    allow_shrink: bool = False  # reprocess: "force"


@dataclass(frozen=True)
class PlannedWindow:
    """One window to run, as plain values so it travels through XCom."""

    job: str
    tenant: str
    start: str
    end: str
    eligible_at: str
    allow_shrink: bool = False

    @property
    def window(self) -> Window:
        return Window(parse_time(self.start), parse_time(self.end))

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "tenant": self.tenant, "start": self.start, "end": self.end,
                "eligible_at": self.eligible_at, "allow_shrink": self.allow_shrink}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PlannedWindow:
        return cls(**{k: str(raw[k]) for k in ("job", "tenant", "start", "end", "eligible_at")},
                   allow_shrink=raw.get("allow_shrink") is True)


@dataclass(frozen=True)
class PlannedBatch:
    """Consecutive windows of one job and tenant that one task instance runs (``windows_per_task``)."""

    windows: tuple[PlannedWindow, ...]

    @property
    def job(self) -> str:
        return self.windows[0].job

    @property
    def tenant(self) -> str:
        return self.windows[0].tenant

    @property
    def allow_shrink(self) -> bool:
        return self.windows[0].allow_shrink

    def as_dict(self) -> dict[str, Any]:
        first, last = self.windows[0], self.windows[-1]
        return {"job": first.job, "tenant": first.tenant, "start": first.start, "end": last.end,
                "allow_shrink": first.allow_shrink,
                "windows": [[w.start, w.end, w.eligible_at] for w in self.windows]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PlannedBatch:
        return cls(tuple(PlannedWindow(str(raw["job"]), str(raw["tenant"]), str(start), str(end), str(eligible_at),
                                       allow_shrink=raw.get("allow_shrink") is True)
                         for start, end, eligible_at in raw["windows"]))


def batch_windows(planned: list[PlannedWindow], size: int) -> list[PlannedBatch]:
    """Planned windows in batches of ``size`` consecutive ones (the last batch may be shorter)."""
    return [PlannedBatch(tuple(batch)) for batch in in_batches(planned, size)]


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if value is None:
        return False
    raise BackfillRequestError(f'conf.{name} must be true or false, or "force" (got {value!r})')


def parse_request(conf: Mapping[str, Any], cfg: EtlConfig) -> BackfillRequest:
    """Validate a conf dict; every error names the offending field."""
    missing = [k for k in ("job", "tenant", "from", "to") if not conf.get(k)]
    if missing:
        raise BackfillRequestError(f"conf is missing {', '.join(missing)}: expected {{job, tenant, from, to}}")
    job = str(conf["job"])
    if job not in JOB_NAMES:
        raise BackfillRequestError(f"conf.job {job!r} is unknown (known: {', '.join(JOB_NAMES)})")
    tenant = str(conf["tenant"])
    try:
        cfg.tenant(tenant)
    except ConfigError as exc:
        raise BackfillRequestError(f"conf.tenant: {exc}") from None
    times = {}
    for key in ("from", "to"):
        try:
            times[key] = parse_time(str(conf[key]))
        except ValueError:
            raise BackfillRequestError(
                f"conf.{key} {conf[key]!r} is not an ISO-8601 time (e.g. 2026-01-31T10:00:00Z)") from None
    if times["from"] >= times["to"]:
        raise BackfillRequestError(f"conf.from {times['from'].isoformat()} must be before conf.to "
                                   f"{times['to'].isoformat()}")
    reprocess = conf.get("reprocess")
    force = isinstance(reprocess, str) and reprocess.strip().lower() == "force"
    return BackfillRequest(job, tenant, times["from"], times["to"], force or _bool(reprocess, "reprocess"),
                           allow_shrink=force)


def plan_windows(request: BackfillRequest, cfg: EtlConfig, *, max_windows: int = MAX_WINDOWS) -> list[PlannedWindow]:
    """Every aligned window of the request (interval-wide, aligned to the job's interval)."""
    job = cfg.job(request.job)
    # Windows are as wide as the scheduled DAG's, so a backfilled window has the same ledger key.
    windows = list(split_range(request.start, request.end, job.interval))
    if not windows:
        raise BackfillRequestError(
            f"[{request.start.isoformat()}, {request.end.isoformat()}) holds no whole {job.interval} window "
            f"of {request.job}: widen the range to {job.interval} boundaries")
    if len(windows) > max_windows:
        raise BackfillRequestError(
            f"{len(windows)} windows of {job.interval} is too many for one backfill run (at most {max_windows}): "
            "split the range into several runs")
    return [PlannedWindow(request.job, request.tenant, w.start.isoformat(), w.end.isoformat(),
                          w.eligible_at(job.delay).isoformat(), request.allow_shrink) for w in windows]


def active_window_length(cfg: EtlConfig) -> timedelta:
    """``jobs.age-refresh.active_window`` (how far back calls keep a graph edge alive)."""
    from airflow_obs_provider.engine.age_graph import DEFAULT_ACTIVE_WINDOW

    return parse_duration(cfg.job(AGE_REFRESH).options.get("active_window", DEFAULT_ACTIVE_WINDOW))


def ledger_window(job: str, window: Window, cfg: EtlConfig) -> Window:
    """The ledger key a job records for a planned window: age-refresh records its active window ending at T."""
    if job == AGE_REFRESH:
        from airflow_obs_provider.engine.age_graph import active_window_ending

        return active_window_ending(window.end, active_window_length(cfg))
    return window


def drop_successful(planned: list[PlannedWindow], cfg: EtlConfig, *,
                    pg_url: str | None) -> tuple[list[PlannedWindow], int]:
    """Leave out windows the ledger already records as successful; returns (remaining, dropped)."""
    if not planned:
        return [], 0
    keys = {p: ledger_window(p.job, p.window, cfg) for p in planned}
    conn = connect(pg_url, autocommit=True, application_name="obs-etl backfill plan")
    try:
        with conn.cursor() as cur:
            require_schema(cur)
            cur.execute(
                "SELECT r.window_from, r.window_to FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id "
                "WHERE r.job = %s AND t.code = %s AND r.status = 'success' "
                "AND r.window_from >= %s AND r.window_to <= %s",
                (planned[0].job, planned[0].tenant, min(k.start for k in keys.values()),
                 max(k.end for k in keys.values())))
            done = {(a, b) for a, b in cur.fetchall()}
    finally:
        conn.close()
    remaining = [p for p in planned if (keys[p].start, keys[p].end) not in done]
    return remaining, len(planned) - len(remaining)
