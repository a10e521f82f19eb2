"""What every windowed operator of this provider shares: context -> window, ledger ids, config, metrics.

Operators stay thin: they resolve Airflow connections into plain values, build the
window from ``data_interval_start/end`` only, and call a job in ``airflow_obs_provider.jobs``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult
from airflow_obs_provider.engine.window import Window
from airflow_obs_provider.orchestration.config_sources import resolve_config
from airflow_obs_provider.version_compat import Stats, Variable

log = logging.getLogger(__name__)

STATS_PREFIX = "obs_etl"


def window_from_context(context: Mapping[str, Any]) -> Window:
    """The run's window, from the data interval only (never from the logical date)."""
    return Window.from_interval(context.get("data_interval_start"), context.get("data_interval_end"))


def run_info_from_context(context: Mapping[str, Any]) -> RunInfo:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    return RunInfo(
        dag_id=getattr(ti, "dag_id", None),
        run_id=getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        try_number=getattr(ti, "try_number", None),
    )


def attempt_first_try(context: Mapping[str, Any]) -> int:
    """The first try number of the task's current attempt: a start or a clear, plus its automatic retries.

    Airflow sets ``max_tries = try_number + retries`` on a clear and ``retries`` at the start, so the
    attempt's first try is ``max_tries - retries + 1`` (the formula Airflow's own task runner uses for
    a sensor's first reschedule). Without those values every try is an attempt of its own.
    """
    ti = context.get("ti") or context.get("task_instance")
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    retries = getattr(getattr(ti, "task", None), "retries", None)
    if not isinstance(try_number, int) or not isinstance(max_tries, int) or max_tries < 0 \
            or not isinstance(retries, int):
        return try_number if isinstance(try_number, int) else 1
    return max(1, min(try_number, max_tries - retries + 1))


def load_etl_config(config_path: str | None = None, config_variable: str | None = None) -> EtlConfig:
    """Configuration from a YAML file (argument or ``OBS_ETL_CONFIG``) or an Airflow Variable holding
    YAML, in the order :mod:`..orchestration.config_sources` decides (a missing Variable fails as Airflow's
    own error: an operator has no bundled file to fall back on)."""
    return resolve_config(Variable.get, config_path=config_path, config_variable=config_variable)[0]


def emit_window_stats(job: str, tenant: str, result: WindowResult) -> None:
    """Publish a finished window's figures through Airflow's Stats (StatsD / OpenTelemetry)."""
    tags = {"job": job, "tenant": tenant, "status": result.status}
    name = f"{STATS_PREFIX}.{job.replace('-', '_')}"
    Stats.incr(f"{name}.windows", tags=tags)
    Stats.incr(f"{name}.records_read", count=int(result.rows_in), tags=tags)
    Stats.incr(f"{name}.rows_written", count=int(result.rows_out), tags=tags)
    Stats.timing(f"{name}.batch_seconds", result.seconds * 1000.0, tags=tags)
    lag = (datetime.now(UTC) - result.window.end).total_seconds()
    Stats.gauge(f"{name}.window_lag_seconds", lag, tags=tags)


@contextmanager
def counting_failures(job: str, tenant: str) -> Iterator[None]:
    """Count a window that fails (``obs_etl.<job>.failures``) and let the error propagate: one place
    for the operators and the backfill DAG."""
    try:
        yield
    except Exception:
        Stats.incr(f"{STATS_PREFIX}.{job.replace('-', '_')}.failures", tags={"job": job, "tenant": tenant})
        raise
