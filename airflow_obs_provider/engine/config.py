"""The ETL configuration (``include/etl.yaml`` or an Airflow Variable holding the same YAML).

Each tenant names its sources; each job has its own cadence. Source blocks stay
plain dicts here: every reader validates the keys of its own kind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from airflow_obs_provider.engine.job_names import (
    AGE_REFRESH,
    JOB_NAMES,
    OO_AGG,
    TOPO_ANSIBLE,
    TOPO_IAC,
    TOPOLOGY_JOB_BY_SOURCE,
    TOPOLOGY_SOURCE_BY_JOB,
)
from airflow_obs_provider.engine.window import parse_duration, parse_time

# Re-exported: callers took the job names from here before engine.job_names existed.
__all__ = ["JOB_NAMES", "TOPOLOGY_JOB_BY_SOURCE", "TOPOLOGY_SOURCE_BY_JOB"]

# Defaults follow design §2 and the origin brief: the bucket reader's delay must
# exceed OpenObserve's ~10-minute WAL horizon.
_JOB_DEFAULTS: dict[str, dict[str, Any]] = {
    # oo-agg windows stay one minute (the ledger's and the tables' grain) but a scheduled run covers
    # five of them: one task start per five minutes instead of per minute (README "Scaling").
    OO_AGG: {"interval": "1m", "align": "1m", "delay": "12m", "initial_lookback": "24h", "max_active_runs": 4,
             "run_every": "5m"},
    AGE_REFRESH: {"interval": "5m", "align": "5m", "delay": "12m", "initial_lookback": "1h", "max_active_runs": 1},
    TOPO_IAC: {"interval": "15m", "align": "15m", "delay": "0s", "initial_lookback": "48h", "max_active_runs": 1},
    TOPO_ANSIBLE: {"interval": "1h", "align": "1h", "delay": "0s", "initial_lookback": "168h", "max_active_runs": 1},
}


# The grain a job's windows must be whole multiples of: its tables' bucket width. A 90-second
# oo-agg window would split metric_1m minutes between two windows, each replacing the minute
# with half of its points; an age-refresh between 5-minute buckets would count partial buckets.
JOB_GRAIN: dict[str, timedelta] = {
    OO_AGG: timedelta(minutes=1),
    AGE_REFRESH: timedelta(minutes=5),
    TOPO_IAC: timedelta(seconds=1),
    TOPO_ANSIBLE: timedelta(seconds=1),
}


# Batching defaults (README "Scaling"): a task instance costs about a CPU-second to start, a window
# of seed data a quarter of that; 30 windows and 5 tenants per task keep Airflow's share small while
# a 60-window backfill or a 10-tenant catch-up still spreads over two or more workers.
DEFAULT_WINDOWS_PER_TASK = 30
DEFAULT_TENANTS_PER_TASK = 5


class ConfigError(ValueError):
    """The configuration is missing a key or holds a bad value; the message names it."""


@dataclass(frozen=True)
class JobConfig:
    name: str
    interval: timedelta
    align: timedelta
    delay: timedelta
    initial_lookback: timedelta
    max_active_runs: int = 4
    failure_threshold: int = 5
    options: Mapping[str, Any] = field(default_factory=dict)
    # A scheduled run's data interval (the DAG's schedule): whole windows of ``interval`` each, run one
    # after another by the same task. None: one window per run.
    run_every: timedelta | None = None
    # How many windows one task instance runs: obs_backfill's batches (a scheduled run's are its own).
    windows_per_task: int = DEFAULT_WINDOWS_PER_TASK
    # How many tenants one task instance runs (each tenant's windows in turn; one failing tenant never
    # stops the others).
    tenants_per_task: int = DEFAULT_TENANTS_PER_TASK

    @property
    def schedule(self) -> timedelta:
        """The scheduled DAG's data interval: ``run_every``, else one window."""
        return self.run_every or self.interval


@dataclass(frozen=True)
class TenantConfig:
    code: str
    name: str
    source: Mapping[str, Any]
    terraform: Mapping[str, Any] = field(default_factory=dict)
    ansible: Mapping[str, Any] = field(default_factory=dict)
    patterns: Mapping[str, Any] = field(default_factory=dict)
    urn_mapping: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    # let oo-agg windows be rewritten from sharply fewer records than their last success (raw data
    # deleted on purpose); off by default, and meant to be switched off again afterwards
    allow_shrink: bool = False


@dataclass(frozen=True)
class EtlConfig:
    tenants: tuple[TenantConfig, ...]
    jobs: Mapping[str, JobConfig]
    start_date: datetime | None = None
    base_dir: Path | None = None
    end_date: datetime | None = None  # optional: scheduled DAGs stop creating runs after it

    @property
    def tenant_codes(self) -> tuple[str, ...]:
        """The configured tenant codes: the only ones a job may create in ``dim_tenant``."""
        return tuple(t.code for t in self.tenants)

    def tenant(self, code: str) -> TenantConfig:
        for t in self.tenants:
            if t.code == code:
                return t
        raise ConfigError(f"tenant {code!r} is not in the configuration (known: {[t.code for t in self.tenants]})")

    def job(self, name: str) -> JobConfig:
        try:
            return self.jobs[name]
        except KeyError:
            raise ConfigError(f"unknown job {name!r} (known: {sorted(self.jobs)})") from None

    def resolve_path(self, path: str) -> Path:
        """Relative paths in the configuration are relative to the configuration file."""
        p = Path(os.path.expandvars(os.path.expanduser(path)))
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p


def _job(name: str, raw: Mapping[str, Any], tenant_lookbacks: Mapping[str, Any]) -> JobConfig:
    # precedence: the job's own keys, then a top-level/tenants-level initial_lookback, then defaults
    lookback = {"initial_lookback": tenant_lookbacks[name]} if name in tenant_lookbacks else {}
    merged = {**_JOB_DEFAULTS.get(name, _JOB_DEFAULTS[OO_AGG]), **lookback, **(raw or {})}
    known = {"interval", "align", "delay", "initial_lookback", "max_active_runs", "failure_threshold", "concurrency",
             "run_every", "windows_per_task", "tenants_per_task"}
    try:
        job = JobConfig(
            name=name,
            interval=parse_duration(merged["interval"]),
            align=parse_duration(merged["align"]),
            delay=parse_duration(merged["delay"]),
            initial_lookback=parse_duration(merged["initial_lookback"]),
            max_active_runs=int(merged.get("max_active_runs", merged.get("concurrency", 4))),
            failure_threshold=int(merged.get("failure_threshold", 5)),
            options={k: v for k, v in merged.items() if k not in known},
            run_every=_run_every(merged, explicit="run_every" in (raw or {})),
            windows_per_task=_positive_int(merged.get("windows_per_task", DEFAULT_WINDOWS_PER_TASK),
                                           "windows_per_task"),
            tenants_per_task=_positive_int(merged.get("tenants_per_task", DEFAULT_TENANTS_PER_TASK),
                                           "tenants_per_task"),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"jobs.{name}: {exc}") from exc
    _check_widths(job)
    return job


def _check_widths(job: JobConfig) -> None:
    """Window widths must be positive whole multiples of the job's table grain (see JOB_GRAIN)."""
    grain = JOB_GRAIN.get(job.name, timedelta(seconds=1))
    for key in ("interval", "align"):
        value: timedelta = getattr(job, key)
        if value <= timedelta(0) or value % grain:
            raise ConfigError(f"jobs.{job.name}.{key} {value} does not fit the job's tables: it must be a positive "
                              f"whole multiple of {grain} (e.g. {grain}, {grain * 5})")
    if job.interval % job.align:
        raise ConfigError(f"jobs.{job.name}.interval {job.interval} must be a whole multiple of "
                          f"jobs.{job.name}.align {job.align} (windows of one job must share their boundaries)")
    for key in ("delay", "initial_lookback"):
        if getattr(job, key) < timedelta(0):
            raise ConfigError(f"jobs.{job.name}.{key} must not be negative")
    if job.run_every is not None and (job.run_every <= timedelta(0) or job.run_every % job.interval):
        raise ConfigError(f"jobs.{job.name}.run_every {job.run_every} must be a positive whole multiple of "
                          f"jobs.{job.name}.interval {job.interval} (a run covers whole windows)")


def _run_every(merged: Mapping[str, Any], *, explicit: bool) -> timedelta | None:
    """The configured ``run_every``; the built-in default only where it holds whole windows (a job
    configured with 2-minute windows runs one window per run unless it says otherwise)."""
    if not merged.get("run_every"):
        return None
    run_every, interval = parse_duration(merged["run_every"]), parse_duration(merged["interval"])
    if not explicit and (interval <= timedelta(0) or run_every % interval):
        return None
    return run_every


def _positive_int(value: Any, key: str) -> int:
    """A count of at least 1 (the caller's error names the job)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a whole number of at least 1 (got {value!r})")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false (got {value!r})")
    return value


def parse_config(raw: Mapping[str, Any], base_dir: Path | None = None) -> EtlConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError("the configuration must be a YAML mapping with a 'tenants' list")
    tenants_raw = raw.get("tenants")
    lookbacks: Mapping[str, Any] = {}
    # The origin brief put initial_lookback under `tenants:`; accept that shape too.
    if isinstance(tenants_raw, Mapping):
        lookbacks = tenants_raw.get("initial_lookback", {}) or {}
        tenants_raw = tenants_raw.get("list", [])
    lookbacks = {**lookbacks, **(raw.get("initial_lookback") or {})}
    if not isinstance(tenants_raw, list) or not tenants_raw:
        raise ConfigError("'tenants' must be a non-empty list of {code, source}")
    tenants = []
    for i, t in enumerate(tenants_raw):
        if not isinstance(t, Mapping) or not t.get("code"):
            raise ConfigError(f"tenants[{i}] needs a 'code'")
        source = t.get("source") or {}
        if source and source.get("kind") not in ("local", "s3", "api"):
            raise ConfigError(f"tenants[{i}].source.kind must be local, s3 or api (got {source.get('kind')!r})")
        tenants.append(
            TenantConfig(
                code=str(t["code"]),
                name=str(t.get("name") or t["code"]),
                source=dict(source),
                terraform=dict(t.get("terraform") or {}),
                ansible=dict(t.get("ansible") or {}),
                patterns=dict(t.get("patterns") or {}),
                urn_mapping=dict(t.get("urn_mapping") or {}),
                enabled=bool(t.get("enabled", True)),
                allow_shrink=_flag(t.get("allow_shrink", False), f"tenants[{i}].allow_shrink"),
            )
        )
    jobs_raw = raw.get("jobs") or {}
    jobs = {name: _job(name, jobs_raw.get(name) or {}, lookbacks) for name in sorted(set(JOB_NAMES) | set(jobs_raw))}
    start = raw.get("start_date")
    end = raw.get("end_date")
    return EtlConfig(
        tenants=tuple(tenants),
        jobs=jobs,
        start_date=parse_time(start) if start else None,
        base_dir=base_dir,
        end_date=parse_time(end) if end else None,
    )


def load_config(path: str | os.PathLike[str]) -> EtlConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {p}: {exc.strerror}") from exc
    return load_config_text(text, base_dir=p.resolve().parent)


def load_config_text(text: str, base_dir: Path | None = None) -> EtlConfig:
    try:
        raw = yaml.safe_load(os.path.expandvars(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration is not valid YAML: {exc}") from exc
    return parse_config(raw, base_dir=base_dir)
