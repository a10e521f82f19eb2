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


def _run_planned(planned: Mapping[str, Any], cfg: EtlConfig, settings: ScheduleSettings,
                 context: Mapping[str, Any]) -> dict[str, Any]:
    """Run one backfill window through the operators' own path (:func:`run_job_window`)."""
    from airflow_obs_provider.operators.windowed import run_job_window
    from airflow_obs_provider.orchestration.backfill import PlannedWindow, active_window_length

    item = PlannedWindow.from_dict(planned)
    options: dict[str, Any] = {"allow_shrink": item.allow_shrink}
    if item.job == AGE_REFRESH:
        options["active_window"] = active_window_length(cfg)
    result = run_job_window(item.job, item.tenant, item.window, load_config=lambda: cfg,
                            postgres_conn_id=settings.postgres_conn_id, connections=settings.connections,
                            run_info=run_info_from_context(context), options=options)
    return {"job": item.job, "tenant": item.tenant, "window": str(item.window), "status": result.status,
            "rows_in": result.rows_in, "rows_out": result.rows_out}


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
                BackfillRequestError,
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
                planned = plan(request, cfg)
            except BackfillRequestError as exc:
                raise AirflowFailException(f"obs_backfill: {exc}") from None
            total = len(planned)
            if not request.reprocess:
                planned, done = drop_successful(planned, cfg,
                                                pg_url=postgres_url(settings.postgres_conn_id))
                log.info("%d of %d windows already successful in the ledger: left out (reprocess=false)", done, total)
            log.info("backfill %s/%s: %d windows to run", request.job, request.tenant, len(planned))
            return [p.as_dict() for p in planned]

        @task.sensor(task_id="run_window", mode="reschedule", poke_interval=POKE_SECONDS,
                     timeout=(BACKFILL_FUTURE_LIMIT + timedelta(hours=1)).total_seconds(),
                     map_index_template="{{ task.op_kwargs['item']['start'] }}")
        def run_window(item: dict[str, Any], **context: Any) -> PokeReturnValue:
            """Wait (rescheduled, no worker held) until the window is eligible, then run it exactly once."""
            from airflow_obs_provider.engine.window import parse_time

            if datetime.now(UTC) < parse_time(item["eligible_at"]):
                log.info("window [%s, %s) not eligible before %s", item["start"], item["end"], item["eligible_at"])
                return PokeReturnValue(is_done=False)
            cfg, _ = runtime_config(fallback)
            return PokeReturnValue(is_done=True, xcom_value=_run_planned(item, cfg, settings, context))

        end_with_done(run_window.expand(item=plan_windows()))
    return dag


_BACKFILL_DOC = """
### obs_backfill: run one job over a past range, exactly once per window

Trigger with conf `{"job": "oo-agg", "tenant": "demo", "from": "2026-01-01T00:00:00Z",
"to": "2026-01-01T06:00:00Z", "reprocess": false}` (UI form, or
`POST /api/v2/dags/obs_backfill/dagRuns` with `logical_date: null` and that `conf`).

The range is split into the job's aligned windows (at most 1024 per run). Windows the ledger already
records as successful are left out unless `reprocess` is true (`"force"`: also rewrite oo-agg windows
whose source now yields sharply fewer records than their last success); windows not yet eligible
(`end + delay` in the future) wait in reschedule mode. A bad conf fails `plan_windows` with a message
naming the field.
"""
