"""The ``obs_backfill`` DAG: any job over a range of windows, each run through the operators' path."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from airflow_obs_provider.dag_factory.common import (
    POKE_SECONDS,
    TAGS,
    dag_failure_callback,
    default_args,
    end_with_done,
)
from airflow_obs_provider.dag_factory.config import runtime_config
from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.engine.job_names import (
    AGE_REFRESH,
    JOB_NAMES,
    OO_AGG,
)
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    run_info_from_context,
)
from airflow_obs_provider.orchestration.schedule import ScheduleSettings, schedule_settings
from airflow_obs_provider.version_compat import (
    DAG,
    AirflowFailException,
    Param,
    PokeReturnValue,
    task,
)

log = logging.getLogger(__name__)

# Backfill windows may end at most this far in the future (they wait, rescheduled, until eligible).
BACKFILL_FUTURE_LIMIT = timedelta(hours=24)


def _run_batch(raw: Mapping[str, Any], cfg: EtlConfig, settings: ScheduleSettings,
               context: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Run the batch's eligible windows through the operators' own path (:class:`WindowRunner`).

    Returns whether every window of the batch is finished, and the XCom summary.
    """
    from airflow_obs_provider.engine.window import parse_time
    from airflow_obs_provider.operators.base import attempt_first_try
    from airflow_obs_provider.operators.windowed import WindowRunner
    from airflow_obs_provider.orchestration.backfill import PlannedBatch, active_window_length

    batch = PlannedBatch.from_dict(raw)
    now = datetime.now(UTC)
    eligible = [p.window for p in batch.windows if now >= parse_time(p.eligible_at)]
    if len(eligible) < len(batch.windows):
        log.info("%d of %d windows of [%s, %s) eligible; the next at %s", len(eligible), len(batch.windows),
                 raw["start"], raw["end"], batch.windows[len(eligible)].eligible_at)
    options: dict[str, Any] = {"allow_shrink": batch.allow_shrink}
    if batch.job == AGE_REFRESH:
        options["active_window"] = active_window_length(cfg)
    runner = WindowRunner(batch.job, load_config=lambda: cfg, postgres_conn_id=settings.postgres_conn_id,
                          connections=settings.connections, run_info=run_info_from_context(context),
                          options=options)
    outcome = runner.run_batch([batch.tenant], eligible, first_try=attempt_first_try(context)) if eligible else None
    if outcome is not None:
        outcome.raise_failures(batch.job)
    results = outcome.results if outcome else []
    summary = {"job": batch.job, "tenant": batch.tenant, "window_from": raw["start"], "window_to": raw["end"],
               "windows": len(batch.windows), "run": len(results),
               "already_done": outcome.already_done if outcome else 0,
               "statuses": sorted({r.status for r in results}),
               "rows_in": sum(r.rows_in for r in results), "rows_out": sum(r.rows_out for r in results)}
    return len(eligible) == len(batch.windows), summary


def build_backfill_dag(dags_dir: Path | None = None) -> DAG:
    settings = schedule_settings(dags_dir)
    fallback = str(settings.config_file) if settings.config_file else None
    with DAG(
        dag_id="obs_backfill",
        schedule=None,  # triggered from the UI or POST /api/v2/dags/obs_backfill/dagRuns
        start_date=settings.start_date,
        catchup=False,
        max_active_runs=4,
        default_args=default_args(),
        tags=[*TAGS, "backfill"],
        doc_md=_BACKFILL_DOC,
        params={
            "job": Param(OO_AGG, type="string", enum=list(JOB_NAMES),
                         description="which job to run"),
            "tenant": Param("demo", type="string", minLength=1, description="dim_tenant code from the config"),
            "from": Param("2026-01-01T00:00:00+00:00", type="string", format="date-time",
                          description="range start (inclusive, floored to the job's window)"),
            "to": Param("2026-01-01T01:00:00+00:00", type="string", format="date-time",
                        description="range end (exclusive, floored to the job's window)"),
            "reprocess": Param(False, type=["boolean", "string"], enum=[False, True, "force"],
                               description="true: rerun windows the ledger marks successful; \"force\": also "
                                           "rewrite oo-agg windows whose source now yields sharply fewer records"),
        },
        on_failure_callback=partial(dag_failure_callback, callback_path=None),
    ) as dag:

        @task(task_id="plan_windows", retries=0)
        def plan_windows(**context: Any) -> list[dict[str, Any]]:
            """Validate the conf and list the windows still to run (a bad conf fails at once, no retries)."""
            from airflow_obs_provider.orchestration.backfill import (
                MAX_WINDOWS,
                BackfillRequestError,
                batch_windows,
                drop_successful,
                parse_request,
            )
            from airflow_obs_provider.orchestration.backfill import (
                plan_windows as plan,
            )

            cfg, _ = runtime_config(fallback)
            conf = {**(context.get("params") or {}), **(getattr(context.get("dag_run"), "conf", None) or {})}
            try:
                request = parse_request(conf, cfg)
                if request.end > datetime.now(UTC) + BACKFILL_FUTURE_LIMIT:
                    raise BackfillRequestError(
                        f"conf.to {request.end.isoformat()} is more than {BACKFILL_FUTURE_LIMIT} in the future")
                # Airflow maps at most [core] max_map_length (1024) tasks: that many batches.
                planned = plan(request, cfg, max_windows=MAX_WINDOWS * cfg.job(request.job).windows_per_task)
            except BackfillRequestError as exc:
                raise AirflowFailException(f"obs_backfill: {exc}") from None
            total = len(planned)
            if not request.reprocess:
                planned, done = drop_successful(planned, cfg,
                                                pg_url=postgres_url(settings.postgres_conn_id))
                log.info("%d of %d windows already successful in the ledger: left out (reprocess=false)", done, total)
            size = cfg.job(request.job).windows_per_task
            batches = batch_windows(planned, size)
            log.info("backfill %s/%s: %d windows to run, in %d tasks of up to %d (jobs.%s.windows_per_task)",
                     request.job, request.tenant, len(planned), len(batches), size, request.job)
            return [b.as_dict() for b in batches]

        @task.sensor(task_id="run_window", mode="reschedule", poke_interval=POKE_SECONDS,
                     timeout=(BACKFILL_FUTURE_LIMIT + timedelta(hours=1)).total_seconds(),
                     map_index_template="{{ task.op_kwargs['item']['start'] }}")
        def run_window(item: dict[str, Any], **context: Any) -> PokeReturnValue:
            """Run the batch's windows once each as they become eligible (rescheduled, no worker held between)."""
            cfg, _ = runtime_config(fallback)
            finished, summary = _run_batch(item, cfg, settings, context)
            return PokeReturnValue(is_done=finished, xcom_value=summary if finished else None)

        end_with_done(run_window.expand(item=plan_windows()))
    return dag


_BACKFILL_DOC = """
### obs_backfill: run one job over a past range, exactly once per window

Trigger with conf `{"job": "oo-agg", "tenant": "demo", "from": "2026-01-01T00:00:00Z",
"to": "2026-01-01T06:00:00Z", "reprocess": false}` (UI form, or
`POST /api/v2/dags/obs_backfill/dagRuns` with `logical_date: null` and that `conf`).

The range is split into the job's aligned windows; one `run_window` task runs up to
`jobs.<job>.windows_per_task` of them (default 30), each its own transaction and ledger row (at most
1024 tasks per run). Windows the ledger already records as successful are left out unless
`reprocess` is true (`"force"`: also rewrite oo-agg windows whose source now yields sharply fewer
records than their last success); windows not yet eligible (`end + delay` in the future) wait in
reschedule mode. A failed task's retry skips the windows it finished. A bad conf fails `plan_windows`
with a message naming the field.
"""
