"""The one path from an Airflow task to a job's window, shared by the operators and ``obs_backfill``.

:func:`run_job_window` loads the configuration, resolves the connections the job reads (only those
it needs for this tenant), runs the job (:mod:`airflow_obs_provider.jobs.registry`) and publishes
its figures; a failure anywhere in it is counted (``obs_etl.<job>.failures``) and propagates.
:class:`WindowedJobOperator` carries the operators' shared ``__init__``/``execute``; the public
operators are thin subclasses that say which job, which options and what to return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult
from airflow_obs_provider.engine.window import Window
from airflow_obs_provider.hooks.source_secrets import source_secrets
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.jobs.registry import JobCall, job
from airflow_obs_provider.operators.base import (
    counting_failures,
    emit_window_stats,
    load_etl_config,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID
from airflow_obs_provider.version_compat import BaseOperator


def run_job_window(job_name: str, tenant: str, window: Window, *, load_config: Callable[[], EtlConfig | None],
                   postgres_conn_id: str, connections: Mapping[str, str | None], run_info: RunInfo,
                   options: Mapping[str, Any] | None = None) -> WindowResult:
    """Run one window of ``job_name`` for ``tenant``: the same steps, in the same order, for every caller."""
    spec = job(job_name)
    with counting_failures(job_name, tenant):
        config = load_config()
        pg_url = postgres_url(postgres_conn_id)
        ids = {name: connections.get(name) for name in spec.connections}
        secrets = source_secrets(**ids) if spec.needs_secrets(config, tenant, ids) else None
        result = spec.run(JobCall(config=config, tenant=tenant, window=window, pg_url=pg_url, run_info=run_info,
                                  secrets=secrets, options=dict(options or {})))
    emit_window_stats(job_name, tenant, result)
    return result


class WindowedJobOperator(BaseOperator):
    """Run one job for ``tenant`` and the run's window ``[data_interval_start, data_interval_end)``.

    Subclasses set ``job_name`` and override :meth:`load_config`, :meth:`connection_ids`,
    :meth:`job_options` and :meth:`report` as their job needs.
    """

    template_fields: Sequence[str] = ("tenant",)
    job_name: str = ""

    def __init__(self, *, tenant: str, postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant
        self.postgres_conn_id = postgres_conn_id

    def load_config(self) -> EtlConfig | None:
        return None

    def connection_ids(self) -> dict[str, str | None]:
        return {}

    def job_options(self) -> dict[str, Any]:
        return {}

    def execute(self, context: Any) -> dict[str, Any]:
        window = window_from_context(context)
        result = run_job_window(self.job_name, self.tenant, window, load_config=self.load_config,
                                postgres_conn_id=self.postgres_conn_id, connections=self.connection_ids(),
                                run_info=run_info_from_context(context), options=self.job_options())
        return self.report(result, window)

    def report(self, result: WindowResult, window: Window) -> dict[str, Any]:
        """Log the window's outcome and return the task's XCom value."""
        raise NotImplementedError


class ConfiguredJobOperator(WindowedJobOperator):
    """A windowed job that reads the ETL configuration (a file, ``OBS_ETL_CONFIG`` or a Variable)."""

    def __init__(self, *, config_path: str | None = None, config_variable: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.config_variable = config_variable

    def load_config(self) -> EtlConfig | None:
        return load_etl_config(self.config_path, self.config_variable)
