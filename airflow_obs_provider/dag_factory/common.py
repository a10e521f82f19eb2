"""What the provider's DAGs share: default arguments, windows, eligibility, tenant selection, callbacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from airflow_obs_provider.dag_factory.config import runtime_config
from airflow_obs_provider.engine.config import JobConfig
from airflow_obs_provider.engine.window import Window, floor_time
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    STATS_PREFIX,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.schedule import ScheduleSettings
from airflow_obs_provider.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_3_PLUS,
    AirflowFailException,
    DeltaDataIntervalTimetable,
    EmptyOperator,
    PokeReturnValue,
    Stats,
    task,
)

log = logging.getLogger(__name__)

TAGS = ["observability", "obs-etl"]
POKE_SECONDS = 30


def default_args(owner: str = "obs-etl") -> dict[str, Any]:
    """Retries with exponential backoff capped at 5 minutes (a Postgres restart heals on retry)."""
    return {
        "owner": owner,
        "retries": 4,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
    }


def first_window_start(start: datetime, job: JobConfig) -> datetime:
    """Round the start date UP to the job's schedule (``run_every``, else its window): the first window
    never starts before it, and runs fall on whole multiples of the schedule.

    Rounding up keeps every 5-minute (or longer) window of ``obs_age_refresh`` covered by whole runs
    of ``obs_oo_agg``, whose own start is rounded the same way.
    """
    floored = floor_time(start, job.schedule)
    return floored if floored == start else floored + job.schedule


def _is_eligible(window: Window, job: JobConfig) -> bool:
    return window.is_eligible(datetime.now(UTC), job.delay, job.align)


def job_window(context: Mapping[str, Any], job: JobConfig) -> Window:
    """The run's window, refused (no retry) unless aligned: an unaligned manual run would overlap others."""
    window = window_from_context(context)
    if not window.is_aligned(job.align):
        raise AirflowFailException(
            f"{job.name} window {window} is not aligned to {job.align}: trigger manual runs with a logical date "
            f"on a window boundary (a run at L covers the window ending at L), or use obs_backfill")
    return window


def _on_circuit_open(event: Any) -> None:
    Stats.incr(f"{STATS_PREFIX}.{event.job.replace('-', '_')}.circuit_open",
               tags={"job": event.job, "tenant": event.tenant})


def dag_failure_callback(context: Mapping[str, Any], *, callback_path: str | None = None) -> None:
    """DAG-level ``on_failure_callback``: a counter, a log line, and the user's ``failure_callback``."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    Stats.incr(f"{STATS_PREFIX}.dag_run_failed", tags={"dag_id": str(dag_id)})
    log.error("obs-etl DAG run failed: %s %s", dag_id, getattr(dag_run, "run_id", ""))
    if callback_path:
        from airflow_obs_provider.orchestration.selection import load_callable

        try:
            load_callable(callback_path)(context)
        except Exception:  # an alerting hook must not mask the failure it reports
            log.exception("failure_callback %s failed", callback_path)


def dag_kwargs(settings: ScheduleSettings, job: str, doc_md: str) -> dict[str, Any]:
    job_cfg = settings.job(job)
    callback = job_cfg.options.get("failure_callback")
    return {
        # a data-interval timetable (windows never zero-width); a run covers run_every, whole windows of interval
        "schedule": DeltaDataIntervalTimetable(job_cfg.schedule),
        "start_date": first_window_start(settings.start_date, job_cfg),
        # The configured end is exclusive (the last window ends there); Airflow's end_date is the
        # last data-interval START it schedules, inclusive.
        "end_date": settings.end_date - timedelta(microseconds=1) if settings.end_date else None,
        "catchup": True,  # explicit: Airflow 3 defaults to False, Airflow 2 to True
        "max_active_runs": job_cfg.max_active_runs,
        "default_args": default_args(),
        "tags": [*TAGS, job],
        "doc_md": doc_md,
        "on_failure_callback": partial(dag_failure_callback, callback_path=str(callback) if callback else None),
    }


def end_with_done(mapped: Any) -> Any:
    """End the DAG with a plain ``done`` task after the mapped one (all_success: a failed tenant still fails
    the run). Airflow 2.11's ``dags backfill`` can leave a mapped LEAF task unexpanded and report a
    deadlock (apache/airflow #25200); a downstream task avoids that."""
    mapped >> EmptyOperator(task_id="done")
    return mapped


def mapped_over_tenant_batches(operator: Any, task_id: str, batches: Any, **kwargs: Any) -> Any:
    """The job's operator mapped over batches of the selected tenants (``jobs.<job>.tenants_per_task``
    each; a map index is named by its tenants), followed by ``done``."""
    return end_with_done(operator.partial(task_id=task_id, map_index_template="{{ task.tenants | join(',') }}",
                                          **kwargs).expand_kwargs(batches))


def eligibility_sensor(job: str, settings: ScheduleSettings) -> Any:
    """Wait until ``data_interval_end + delay`` without holding a worker slot.

    Airflow 3: a deferrable ``DateTimeSensorAsync`` that ends in the triggerer; from 3.3 it also starts
    there (``start_from_trigger`` with a templated time), so waiting costs no worker process at all,
    where a reschedule-mode sensor started one per poke (24 for a 12-minute delay). Airflow 2.11 keeps
    the reschedule-mode sensor: its ``dags backfill`` runs no triggerer.
    """
    job_cfg = settings.job(job)
    timeout = (job_cfg.delay + job_cfg.schedule + timedelta(hours=2)).total_seconds()
    if AIRFLOW_V_3_0_PLUS:
        from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync

        delay_s = int(job_cfg.delay.total_seconds())
        target = "{{ (data_interval_end + macros.timedelta(seconds=" + str(delay_s) + ")).isoformat() }}"
        from_trigger = {"start_from_trigger": True} if AIRFLOW_V_3_3_PLUS else {}
        return DateTimeSensorAsync(task_id="wait_until_eligible", target_time=target, end_from_trigger=True,
                                   timeout=timeout, **from_trigger)

    @task.sensor(task_id="wait_until_eligible", mode="reschedule", poke_interval=POKE_SECONDS, timeout=timeout)
    def wait_until_eligible(**context: Any) -> PokeReturnValue:
        window = job_window(context, job_cfg)
        ready = _is_eligible(window, job_cfg)
        if not ready:
            log.info("%s %s not eligible before %s", job, window, window.eligible_at(job_cfg.delay))
        return PokeReturnValue(is_done=ready)

    return wait_until_eligible()


def selection_task(job: str, settings: ScheduleSettings, *, with_config_path: bool) -> Any:
    fallback = str(settings.config_file) if settings.config_file else None
    conn_id = settings.postgres_conn_id

    @task(task_id="select_tenants")
    def select_tenants(**context: Any) -> list[dict[str, Any]]:
        """Enabled tenants of this run, minus initial-lookback and circuit-open ones (see ledger), in batches
        of ``jobs.<job>.tenants_per_task``."""
        from airflow_obs_provider.orchestration.selection import in_batches, summary_lines
        from airflow_obs_provider.orchestration.selection import select_tenants as select

        cfg, config_path = runtime_config(fallback)
        ti = context["ti"]
        job_cfg = cfg.job(job)
        window = job_window(context, job_cfg)
        selection = select(cfg, job, window, pg_url=postgres_url(conn_id),
                           try_number=int(getattr(ti, "try_number", 1) or 1),
                           run_info=run_info_from_context(context), on_circuit_open=_on_circuit_open)
        for line in summary_lines(selection):
            log.info("%s", line)
        for code, reason in selection.skipped.items():
            Stats.incr(f"{STATS_PREFIX}.{job.replace('-', '_')}.windows_skipped",
                       tags={"job": job, "tenant": code, "reason": reason.split(" (")[0]})
        extra = {"config_path": config_path} if with_config_path else {}
        return [{"tenants": batch, **extra} for batch in in_batches(selection.tenants, job_cfg.tenants_per_task)]

    return select_tenants()
