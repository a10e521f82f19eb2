"""Builds the provider's DAGs; the files in ``dags/`` are one-line callers of these functions.

Stable names (other tooling, tests and users rely on them):

- DAG ids: ``obs_oo_agg``, ``obs_age_refresh``, ``obs_topo_iac``, ``obs_topo_ansible``, ``obs_backfill``,
  ``obs_reconcile``.
- Windowed DAGs: ``wait_until_eligible`` (sensor, reschedule mode) and ``select_tenants`` both feed the
  job's mapped task (``aggregate`` / ``refresh_graph`` / ``diff_topology``), one map index per tenant.
  ``obs_age_refresh`` waits on ``wait_for_oo_agg`` (ExternalTaskSensor on the 1-minute runs) instead.
  The task producing the mapped list has no upstream task on purpose: Airflow 2.11's
  ``dags backfill`` deadlocks on a mapped task whose list producer has an upstream of its own.
- ``obs_backfill``: ``plan_windows`` -> ``run_window`` (a reschedule-mode sensor mapped over the windows:
  it waits until the window is eligible, then runs it through the job function).
- ``obs_reconcile``: ``select_tenants`` -> ``reconcile`` (one map index per tenant): every 15 minutes
  (``jobs.oo-agg.reconcile_interval``), the oo-agg windows whose source gained late records are rerun.

Parsing reads only the schedule-shaping keys of one local file (``OBS_ETL_CONFIG``, else
``include/etl.yaml`` beside the DAG folder; see ``orchestration.schedule``). Tasks resolve the
tenants at run time from ``OBS_ETL_CONFIG``, else the Airflow Variable ``obs_etl_config``, else
that same bundled file. Connection ids come from the ``airflow:`` block of the file
(``postgres_conn_id``, default ``obs_postgres``; optional ``aws_conn_id``, ``oo_conn_id``,
``file_list_conn_id``, looked up only when set).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from airflow_obs_provider.engine.config import EtlConfig, JobConfig
from airflow_obs_provider.engine.job_names import (
    AGE_REFRESH,
    JOB_NAMES,
    OO_AGG,
    TOPOLOGY_JOB_BY_SOURCE,
)
from airflow_obs_provider.engine.window import Window, floor_time
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    STATS_PREFIX,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.config_sources import CONFIG_VARIABLE, NoConfigError, resolve_config
from airflow_obs_provider.orchestration.schedule import ScheduleSettings, schedule_settings
from airflow_obs_provider.version_compat import (
    DAG,
    AirflowFailException,
    DeltaDataIntervalTimetable,
    EmptyOperator,
    ExternalTaskSensor,
    Param,
    PokeReturnValue,
    Stats,
    Variable,
    task,
)

log = logging.getLogger(__name__)

TAGS = ["observability", "obs-etl"]
POKE_SECONDS = 30
# Backfill windows may end at most this far in the future (they wait, rescheduled, until eligible).
BACKFILL_FUTURE_LIMIT = timedelta(hours=24)
# How often obs_reconcile looks for late-arriving records (jobs.oo-agg.reconcile_interval).
RECONCILE_INTERVAL = "15m"


# --------------------------------------------------------------------------- shared pieces

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
    """Round the start date UP to the job's alignment: the first window never starts before it.

    Rounding up keeps every 5-minute (or longer) window covered by 1-minute runs of
    ``obs_oo_agg``, whose own start is rounded the same way.
    """
    floored = floor_time(start, job.align)
    return floored if floored == start else floored + job.align


def runtime_config(fallback_file: str | None) -> tuple[EtlConfig, str | None]:
    """The configuration at task time, and the file path to hand to operators (None: env or Variable).

    Order: ``OBS_ETL_CONFIG`` file, Airflow Variable ``obs_etl_config``, the file found at parse time.
    """
    try:
        # positional default: the same call on Airflow 2.11 and 3.x
        return resolve_config(lambda name: Variable.get(name, None), fallback_file=fallback_file)
    except NoConfigError as exc:
        raise AirflowFailException(str(exc)) from None


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


def _dag_kwargs(settings: ScheduleSettings, job: str, doc_md: str) -> dict[str, Any]:
    job_cfg = settings.job(job)
    callback = job_cfg.options.get("failure_callback")
    return {
        "schedule": DeltaDataIntervalTimetable(job_cfg.interval),  # a data-interval timetable: windows never zero-width
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


def _done(mapped: Any) -> Any:
    """End the DAG with a plain ``done`` task after the mapped one (all_success: a failed tenant still fails
    the run). Airflow 2.11's ``dags backfill`` can leave a mapped LEAF task unexpanded and report a
    deadlock (apache/airflow #25200); a downstream task avoids that."""
    mapped >> EmptyOperator(task_id="done")
    return mapped


def _eligibility_sensor(job: str, settings: ScheduleSettings) -> Any:
    """Wait until ``data_interval_end + delay`` without holding a worker slot (reschedule mode)."""
    job_cfg = settings.job(job)

    @task.sensor(task_id="wait_until_eligible", mode="reschedule", poke_interval=POKE_SECONDS,
                 timeout=(job_cfg.delay + job_cfg.interval + timedelta(hours=2)).total_seconds())
    def wait_until_eligible(**context: Any) -> PokeReturnValue:
        window = job_window(context, job_cfg)
        ready = _is_eligible(window, job_cfg)
        if not ready:
            log.info("%s %s not eligible before %s", job, window, window.eligible_at(job_cfg.delay))
        return PokeReturnValue(is_done=ready)

    return wait_until_eligible()


def _selection_task(job: str, settings: ScheduleSettings, *, with_config_path: bool) -> Any:
    fallback = str(settings.config_file) if settings.config_file else None
    conn_id = settings.postgres_conn_id

    @task(task_id="select_tenants")
    def select_tenants(**context: Any) -> list[dict[str, Any]]:
        """Enabled tenants of this window, minus initial-lookback and circuit-open ones (see ledger)."""
        from airflow_obs_provider.orchestration.selection import select_tenants as select
        from airflow_obs_provider.orchestration.selection import summary_lines

        cfg, config_path = runtime_config(fallback)
        ti = context["ti"]
        window = job_window(context, settings.job(job))
        selection = select(cfg, job, window, pg_url=postgres_url(conn_id),
                           try_number=int(getattr(ti, "try_number", 1) or 1),
                           run_info=run_info_from_context(context), on_circuit_open=_on_circuit_open)
        for line in summary_lines(selection):
            log.info("%s", line)
        for code, reason in selection.skipped.items():
            Stats.incr(f"{STATS_PREFIX}.{job.replace('-', '_')}.windows_skipped",
                       tags={"job": job, "tenant": code, "reason": reason.split(" (")[0]})
        extra = {"config_path": config_path} if with_config_path else {}
        return [{"tenant": code, **extra} for code in selection.tenants]

    return select_tenants()


# --------------------------------------------------------------------------- scheduled DAGs

def build_oo_agg_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator

    settings = schedule_settings(dags_dir)
    with DAG(dag_id="obs_oo_agg", **_dag_kwargs(settings, OO_AGG, _OO_AGG_DOC)) as dag:
        tenants = _selection_task(OO_AGG, settings, with_config_path=True)
        eligible = _eligibility_sensor(OO_AGG, settings)
        eligible >> _done(OOToTimescaleOperator.partial(
            task_id="aggregate",
            postgres_conn_id=settings.postgres_conn_id,
            aws_conn_id=settings.aws_conn_id,
            oo_conn_id=settings.oo_conn_id,
            file_list_conn_id=settings.file_list_conn_id,
            config_variable=CONFIG_VARIABLE,
            map_index_template="{{ task.tenant }}",
        ).expand_kwargs(tenants))
    return dag


def oo_agg_logical_dates(logical_date: datetime, data_interval_start: datetime | None = None,
                         data_interval_end: datetime | None = None, *, step_seconds: float = 60,
                         **_: Any) -> list[datetime]:
    """Logical dates of the ``obs_oo_agg`` runs inside this run's window.

    Scheduled runs of a data-interval timetable have ``logical_date == data_interval_start`` on
    both Airflow 2.11 and 3.x, so the runs inside [S, E) are S, S+step, ..., E-step.
    """
    window = Window.from_interval(data_interval_start, data_interval_end)
    return [w.start for w in window.split(timedelta(seconds=step_seconds))]


def build_age_refresh_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.age_refresh import AgeRefreshOperator

    settings = schedule_settings(dags_dir)
    oo_job = settings.job(OO_AGG)
    with DAG(dag_id="obs_age_refresh", **_dag_kwargs(settings, AGE_REFRESH, _AGE_DOC)) as dag:
        wait = ExternalTaskSensor(
            task_id="wait_for_oo_agg",
            external_dag_id="obs_oo_agg",
            external_task_id=None,  # the whole run: every tenant's aggregate for that minute
            execution_date_fn=partial(oo_agg_logical_dates, step_seconds=oo_job.interval.total_seconds()),
            allowed_states=["success"],
            failed_states=["failed"],
            mode="reschedule",
            poke_interval=60,
            timeout=(oo_job.delay + timedelta(hours=6)).total_seconds(),
            retries=0,  # a sensor timeout or an upstream failure is final; clear the run to wait again
        )
        tenants = _selection_task(AGE_REFRESH, settings, with_config_path=False)
        active_window = settings.job(AGE_REFRESH).options.get("active_window")  # else the operator's default
        wait >> _done(AgeRefreshOperator.partial(
            task_id="refresh_graph",
            postgres_conn_id=settings.postgres_conn_id,
            **({"active_window": active_window} if active_window else {}),
            map_index_template="{{ task.tenant }}",
        ).expand_kwargs(tenants))
    return dag


def build_topology_dag(source: str, dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.topology_diff import TopologyDiffOperator

    if source not in TOPOLOGY_JOB_BY_SOURCE:
        raise ValueError(f"topology source must be terraform or ansible (got {source!r})")
    job = TOPOLOGY_JOB_BY_SOURCE[source]
    dag_id = "obs_" + job.replace("-", "_")  # obs_topo_iac, obs_topo_ansible
    settings = schedule_settings(dags_dir)
    with DAG(dag_id=dag_id, **_dag_kwargs(settings, job, _TOPO_DOC.format(source=source, job=job))) as dag:
        tenants = _selection_task(job, settings, with_config_path=True)
        eligible = _eligibility_sensor(job, settings)
        eligible >> _done(TopologyDiffOperator.partial(
            task_id="diff_topology",
            source=source,
            postgres_conn_id=settings.postgres_conn_id,
            aws_conn_id=settings.aws_conn_id,
            config_variable=CONFIG_VARIABLE,
            map_index_template="{{ task.tenant }}",
        ).expand_kwargs(tenants))
    return dag


# --------------------------------------------------------------------------- backfill DAG

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

        _done(run_window.expand(item=plan_windows()))
    return dag


# --------------------------------------------------------------------------- late-data reconcile DAG

def emit_reconcile_stats(tenant: str, report: Any) -> None:
    """Counters of one reconcile pass: windows rerun for late records, and those records."""
    name = f"{STATS_PREFIX}.oo_agg"
    tags = {"job": OO_AGG, "tenant": tenant}
    Stats.incr(f"{name}.late_windows", count=int(report.late_windows), tags=tags)
    Stats.incr(f"{name}.late_records", count=int(report.late_records), tags=tags)


def build_reconcile_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.engine.window import parse_duration

    settings = schedule_settings(dags_dir)
    fallback = str(settings.config_file) if settings.config_file else None
    oo_job = settings.job(OO_AGG)
    interval = parse_duration(oo_job.options.get("reconcile_interval", RECONCILE_INTERVAL))
    with DAG(
        dag_id="obs_reconcile",
        schedule=DeltaDataIntervalTimetable(interval),
        start_date=floor_time(settings.start_date, interval),
        catchup=False,  # a pass checks the whole late horizon as of now: missed passes need no replay
        max_active_runs=1,
        default_args=default_args(),
        tags=[*TAGS, OO_AGG, "reconcile"],
        doc_md=_RECONCILE_DOC,
        on_failure_callback=partial(dag_failure_callback, callback_path=None),
    ) as dag:

        @task(task_id="select_tenants")
        def select_tenants() -> list[dict[str, str]]:
            """Every enabled tenant (oo-agg runs for all of them)."""
            from airflow_obs_provider.orchestration.selection import tenants_for_job

            cfg, _ = runtime_config(fallback)
            return [{"tenant": t.code} for t in tenants_for_job(cfg, OO_AGG)]

        @task(task_id="reconcile", map_index_template="{{ task.op_kwargs['tenant'] }}")
        def reconcile_tenant(tenant: str, **context: Any) -> dict[str, Any]:
            """Rerun the tenant's windows that gained late records; fails (and retries) when a rerun failed."""
            from airflow_obs_provider.hooks.source_secrets import source_secrets
            from airflow_obs_provider.jobs.reconcile import format_report, reconcile

            cfg, _ = runtime_config(fallback)
            secrets = source_secrets(aws_conn_id=settings.aws_conn_id, oo_conn_id=settings.oo_conn_id,
                                     file_list_conn_id=settings.file_list_conn_id)
            report = reconcile(cfg, tenant, pg_url=postgres_url(settings.postgres_conn_id),
                               secrets=secrets, run_info=run_info_from_context(context))
            for line in format_report(report):
                log.info("%s", line)
            emit_reconcile_stats(tenant, report)
            if not report.ok:
                failed = [f"{r.job} {r.window}: {r.error}" for r in report.reruns if r.status == "failed"]
                failed += [f"{w} not checked: {error}" for w, error in report.unreadable]
                raise RuntimeError(f"reconcile {tenant}: {len(failed)} problem(s): {'; '.join(failed)}")
            return {"tenant": tenant, "checked": report.checked, "late_windows": report.late_windows,
                    "late_records": report.late_records, "compacted": report.compacted}

        _done(reconcile_tenant.expand_kwargs(select_tenants()))
    return dag


# --------------------------------------------------------------------------- docs

_OO_AGG_DOC = """
### obs_oo_agg: OpenObserve -> TimescaleDB, one-minute windows

Each run covers its data interval `[start, end)` (a data-interval timetable, catch-up on).

1. `wait_until_eligible` waits (reschedule mode: no worker slot held) until `end + jobs.oo-agg.delay`.
2. `select_tenants` (alongside) lists enabled tenants, leaving out (ledger status `skipped`) windows before a new
   tenant's `initial_lookback` and tenants whose circuit breaker is open (`failure_threshold`
   consecutive failed windows). Clearing this task (or the run) resets the breaker; so does a change
   of the tenant's or job's configuration.
3. `aggregate` maps `OOToTimescaleOperator` over the tenants: one failing tenant never blocks another.

Every (tenant, window) is written exactly once (ledger `etl_job_run`); clears and backfills rewrite
the same rows.
"""

_AGE_DOC = """
### obs_age_refresh: the active service-call graph (Apache AGE), five-minute windows

`wait_for_oo_agg` waits for the five `obs_oo_agg` runs inside the window (fails when one failed,
times out after hours), then `refresh_graph` maps `AgeRefreshOperator` over the tenants for
T = the window end.
"""

_TOPO_DOC = """
### Topology from {source} ({job})

At each window end, `diff_topology` observes the tenants' {source} sources and records edge
changes in `topo_edge_time` (open / close validity intervals). Tenants without a `{source}` block are
not run.
"""

_RECONCILE_DOC = """
### obs_reconcile: late-arriving records, every 15 minutes

OpenObserve accepts records up to 5 hours late (`ZO_INGEST_ALLOWED_UPTO`). For each enabled tenant,
`reconcile` compares what every successful `obs_oo_agg` window of the last `jobs.oo-agg.late_horizon`
(default 5h) read (the ledger's `source_digest`) with the bucket today and reruns, exactly once, the
windows whose source gained records, plus the current graph refresh when it reads a recomputed
5-minute bucket. Stats: `obs_etl.oo_agg.late_windows`, `obs_etl.oo_agg.late_records`.
Same as `obs-etl reconcile --config FILE --tenant CODE`.
"""

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
