"""The one path from an Airflow task to a job's windows, shared by the operators and ``obs_backfill``.

A task instance runs a *batch*: one or more tenants, each over one or more consecutive windows.
:class:`WindowRunner` loads the configuration and resolves the connections once per task (and the
source credentials once per tenant), then runs every window through the job
(:mod:`airflow_obs_provider.jobs.registry`) as its own ledger transaction, so exactly-once holds
per window whatever the batch. A failing window is counted (``obs_etl.<job>.failures``) and ends
that tenant's batch; the other tenants still run, and the task then fails naming every failed
tenant. A retry skips what the attempt already finished (:func:`windows_done_in_attempt`), so
the failed window and those after it run again; a clear starts a new attempt and reruns them all.

:class:`WindowedJobOperator` carries the operators' shared ``__init__``/``execute``; the public
operators are thin subclasses that say which job, which options and what to return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.engine.job_names import SPLIT_RUN_JOBS
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult, windows_done_in_attempt
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import Window
from airflow_obs_provider.hooks.source_secrets import source_secrets
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.jobs.registry import JobCall, job
from airflow_obs_provider.operators.base import (
    attempt_first_try,
    counting_failures,
    emit_window_stats,
    load_etl_config,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID
from airflow_obs_provider.version_compat import AirflowException, BaseOperator

log = logging.getLogger(__name__)


class BatchFailed(AirflowException):
    """Some tenants of a task's batch failed; the others finished (and stay finished on retry)."""


@dataclass
class BatchOutcome:
    """What a batch did: the windows run, those an earlier try of the attempt had finished, the failures."""

    results: list[WindowResult] = field(default_factory=list)
    already_done: int = 0
    failures: dict[str, BaseException] = field(default_factory=dict)  # tenant -> its first error
    failed_windows: dict[str, Window] = field(default_factory=dict)

    def raise_failures(self, job_name: str) -> None:
        """Fail the task: with the error itself when one tenant failed, else naming every failed tenant."""
        if not self.failures:
            return
        if len(self.failures) == 1:
            raise next(iter(self.failures.values()))
        named = "; ".join(f"{tenant} at {self.failed_windows[tenant]}: {type(exc).__name__}: {exc}"
                          for tenant, exc in self.failures.items())
        raise BatchFailed(f"{job_name}: {len(self.failures)} tenants failed ({named}); the other tenants' "
                          "windows finished, and a retry runs only the failed windows and those after them")


class WindowRunner:
    """Runs windows of one job for the task's tenants, resolving configuration and connections once."""

    def __init__(self, job_name: str, *, load_config: Callable[[], EtlConfig | None], postgres_conn_id: str,
                 connections: Mapping[str, str | None], run_info: RunInfo,
                 options: Mapping[str, Any] | None = None) -> None:
        self.spec = job(job_name)
        self._load_config = load_config
        self.postgres_conn_id = postgres_conn_id
        self.connections = connections
        self.run_info = run_info
        self.options = dict(options or {})
        self._resolved: tuple[EtlConfig | None, str] | None = None
        self._secrets: dict[str, SourceSecrets | None] = {}

    def _resolve(self, tenant: str) -> tuple[EtlConfig | None, str, SourceSecrets | None]:
        if self._resolved is None:
            self._resolved = (self._load_config(), postgres_url(self.postgres_conn_id))
        config, pg_url = self._resolved
        if tenant not in self._secrets:
            ids = {name: self.connections.get(name) for name in self.spec.connections}
            self._secrets[tenant] = source_secrets(**ids) if self.spec.needs_secrets(config, tenant, ids) else None
        return config, pg_url, self._secrets[tenant]

    def run(self, tenant: str, window: Window) -> WindowResult:
        """Run one window of ``tenant``: the same steps, in the same order, for every caller."""
        with counting_failures(self.spec.name, tenant):
            config, pg_url, secrets = self._resolve(tenant)
            result = self.spec.run(JobCall(config=config, tenant=tenant, window=window, pg_url=pg_url,
                                           run_info=self.run_info, secrets=secrets, options=self.options))
        emit_window_stats(self.spec.name, tenant, result)
        return result

    def run_batch(self, tenants: Sequence[str], windows: Sequence[Window], *, first_try: int,
                  on_result: Callable[[WindowResult], None] | None = None) -> BatchOutcome:
        """Every tenant over ``windows`` in order; a tenant stops at its first failed window."""
        outcome = BatchOutcome()
        for tenant in tenants:
            try:
                _, pg_url, _ = self._resolve(tenant)
                done = windows_done_in_attempt(self.spec.name, tenant, windows, self.run_info,
                                               first_try=first_try, pg_url=pg_url)
            except Exception as exc:  # e.g. a connection that does not resolve: this tenant fails
                log.exception("%s %s: cannot start its windows", self.spec.name, tenant)
                outcome.failures[tenant], outcome.failed_windows[tenant] = exc, windows[0]
                continue
            if done:
                log.info("%s %s: %d of %d windows already finished by this attempt (try >= %d): skipped",
                         self.spec.name, tenant, len(done), len(windows), first_try)
                outcome.already_done += len(done)
            for window in windows:
                if window in done:
                    continue
                try:
                    result = self.run(tenant, window)
                except Exception as exc:
                    log.exception("%s %s %s failed; this tenant's later windows wait for the retry",
                                  self.spec.name, tenant, window)
                    outcome.failures[tenant], outcome.failed_windows[tenant] = exc, window
                    break
                outcome.results.append(result)
                if on_result is not None:
                    on_result(result)
        return outcome


def batch_label(tenants: Sequence[str]) -> str:
    """The UI's name of a tenant batch (its map index): the tenant codes, shortened past a few."""
    return ",".join(tenants) if len(tenants) <= 4 else f"{','.join(tenants[:3])},+{len(tenants) - 3}"


class WindowedJobOperator(BaseOperator):
    """Run one job for ``tenants`` over the run's ``[data_interval_start, data_interval_end)``.

    The interval is split into windows of ``window_width`` (default: for oo-agg the job's ``interval``
    from the configuration; the other jobs observe the interval's end once); each tenant runs them in
    order.
    Subclasses set ``job_name`` and override :meth:`load_config`, :meth:`connection_ids`,
    :meth:`job_options` and :meth:`report` as their job needs.

    :param tenant: one tenant code (the single-tenant form)
    :param tenants: several tenant codes, run one after another by this task
    :param window_width: width of each window inside the run's interval
    """

    template_fields: Sequence[str] = ("tenants",)
    job_name: str = ""

    def __init__(self, *, tenant: str | None = None, tenants: Sequence[str] | None = None,
                 postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID, window_width: timedelta | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (tenant is None) == (tenants is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of tenant= or tenants=")
        self.tenants: list[str] = [tenant] if tenant is not None else list(tenants or [])
        if not self.tenants:
            raise ValueError(f"{type(self).__name__}: tenants= is empty")
        self.postgres_conn_id = postgres_conn_id
        self.window_width = window_width

    @property
    def tenant(self) -> str:
        """The first (for one-tenant tasks: the only) tenant."""
        return self.tenants[0]

    def load_config(self) -> EtlConfig | None:
        return None

    def connection_ids(self) -> dict[str, str | None]:
        return {}

    def job_options(self) -> dict[str, Any]:
        return {}

    def windows(self, span: Window, config: EtlConfig | None) -> list[Window]:
        """The run's windows: ``window_width`` (else the job's ``interval``) slices for jobs that read
        records of a window (SPLIT_RUN_JOBS); one observation at the span's end for the others."""
        width = self.window_width
        if width is None and config is not None and self.job_name in SPLIT_RUN_JOBS:
            width = config.job(self.job_name).interval
        return list(span.split(width)) if width and width < span.end - span.start else [span]

    def execute(self, context: Any) -> dict[str, Any]:
        span = window_from_context(context)
        with counting_failures(self.job_name, batch_label(self.tenants)):
            config = self.load_config()
        runner = WindowRunner(self.job_name, load_config=lambda: config, postgres_conn_id=self.postgres_conn_id,
                              connections=self.connection_ids(), run_info=run_info_from_context(context),
                              options=self.job_options())
        windows = self.windows(span, config)
        reports: list[dict[str, Any]] = []
        outcome = runner.run_batch(self.tenants, windows, first_try=attempt_first_try(context),
                                   on_result=lambda r: reports.append({"tenant": r.tenant_code,
                                                                       **self.report(r, r.window)}))
        outcome.raise_failures(self.job_name)
        if len(reports) == 1 and not outcome.already_done:
            return reports[0]
        return {"status": "success", "tenants": self.tenants, "windows": len(windows),
                "window_from": span.start.isoformat(), "window_to": span.end.isoformat(),
                "already_done": outcome.already_done, "runs": reports}

    def report(self, result: WindowResult, window: Window) -> dict[str, Any]:
        """Log a window's outcome and return what the task's XCom value shows of it."""
        raise NotImplementedError


class ConfiguredJobOperator(WindowedJobOperator):
    """A windowed job that reads the ETL configuration (a file, ``OBS_ETL_CONFIG`` or a Variable)."""

    def __init__(self, *, config_path: str | None = None, config_variable: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.config_variable = config_variable

    def load_config(self) -> EtlConfig | None:
        return load_etl_config(self.config_path, self.config_variable)
