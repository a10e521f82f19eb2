"""The scheduled DAGs: ``obs_oo_agg``, ``obs_age_refresh``, ``obs_topo_iac`` and ``obs_topo_ansible``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from airflow_obs_provider.dag_factory.common import (
    dag_kwargs,
    eligibility_sensor,
    mapped_over_tenant_batches,
    selection_task,
)
from airflow_obs_provider.engine.job_names import (
    AGE_REFRESH,
    OO_AGG,
    TOPOLOGY_JOB_BY_SOURCE,
)
from airflow_obs_provider.engine.window import Window, floor_time, split_range
from airflow_obs_provider.orchestration.config_sources import CONFIG_VARIABLE
from airflow_obs_provider.orchestration.schedule import schedule_settings
from airflow_obs_provider.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    DAG,
    ExternalTaskSensor,
)

log = logging.getLogger(__name__)


def build_oo_agg_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.oo_to_timescale import OOToTimescaleOperator

    settings = schedule_settings(dags_dir)
    with DAG(dag_id="obs_oo_agg", **dag_kwargs(settings, OO_AGG, _OO_AGG_DOC)) as dag:
        tenants = selection_task(OO_AGG, settings, with_config_path=True)
        eligible = eligibility_sensor(OO_AGG, settings)
        eligible >> mapped_over_tenant_batches(
            OOToTimescaleOperator, "aggregate", tenants,
            postgres_conn_id=settings.postgres_conn_id,
            aws_conn_id=settings.aws_conn_id,
            oo_conn_id=settings.oo_conn_id,
            file_list_conn_id=settings.file_list_conn_id,
            config_variable=CONFIG_VARIABLE,
        )
    return dag


def oo_agg_logical_dates(logical_date: datetime, data_interval_start: datetime | None = None,
                         data_interval_end: datetime | None = None, *, step_seconds: float = 60,
                         **_: Any) -> list[datetime]:
    """Logical dates of the ``obs_oo_agg`` runs that cover this run's window.

    Scheduled runs of a data-interval timetable have ``logical_date == data_interval_start`` on
    both Airflow 2.11 and 3.x, and ``obs_oo_agg`` runs start on whole multiples of their schedule
    (``step``), so the runs covering [S, E) are floor(S, step), ..., up to E.
    """
    window = Window.from_interval(data_interval_start, data_interval_end)
    step = timedelta(seconds=step_seconds)
    return [w.start for w in split_range(floor_time(window.start, step), window.end + step - timedelta(microseconds=1),
                                          step)]


def build_age_refresh_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.age_refresh import AgeRefreshOperator

    settings = schedule_settings(dags_dir)
    oo_job = settings.job(OO_AGG)
    with DAG(dag_id="obs_age_refresh", **dag_kwargs(settings, AGE_REFRESH, _AGE_DOC)) as dag:
        wait = ExternalTaskSensor(
            task_id="wait_for_oo_agg",
            external_dag_id="obs_oo_agg",
            external_task_id=None,  # the whole run: every tenant's aggregate for that minute
            execution_date_fn=partial(oo_agg_logical_dates, step_seconds=oo_job.schedule.total_seconds()),
            allowed_states=["success"],
            failed_states=["failed"],
            # Airflow 3: deferred to the triggerer (a reschedule-mode sensor started a worker process per
            # one-minute poke, about 13 per run at the default delay); 2.11's dags backfill has no triggerer.
            deferrable=AIRFLOW_V_3_0_PLUS,
            mode="reschedule",
            poke_interval=60,
            timeout=(oo_job.delay + timedelta(hours=6)).total_seconds(),
            retries=0,  # a sensor timeout or an upstream failure is final; clear the run to wait again
        )
        tenants = selection_task(AGE_REFRESH, settings, with_config_path=False)
        active_window = settings.job(AGE_REFRESH).options.get("active_window")  # else the operator's default
        wait >> mapped_over_tenant_batches(
            AgeRefreshOperator, "refresh_graph", tenants,
            postgres_conn_id=settings.postgres_conn_id,
            **({"active_window": active_window} if active_window else {}),
        )
    return dag


def build_topology_dag(source: str, dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.operators.topology_diff import TopologyDiffOperator

    if source not in TOPOLOGY_JOB_BY_SOURCE:
        raise ValueError(f"topology source must be terraform or ansible (got {source!r})")
    job = TOPOLOGY_JOB_BY_SOURCE[source]
    dag_id = "obs_" + job.replace("-", "_")  # obs_topo_iac, obs_topo_ansible
    settings = schedule_settings(dags_dir)
    with DAG(dag_id=dag_id, **dag_kwargs(settings, job, _TOPO_DOC.format(source=source, job=job))) as dag:
        tenants = selection_task(job, settings, with_config_path=True)
        eligible = eligibility_sensor(job, settings)
        eligible >> mapped_over_tenant_batches(
            TopologyDiffOperator, "diff_topology", tenants,
            source=source,
            postgres_conn_id=settings.postgres_conn_id,
            aws_conn_id=settings.aws_conn_id,
            config_variable=CONFIG_VARIABLE,
        )
    return dag


_OO_AGG_DOC = """
### obs_oo_agg: OpenObserve -> TimescaleDB, one-minute windows, a run every `run_every`

Each run covers its data interval `[start, end)`: `jobs.oo-agg.run_every` (default 5 minutes) made of
one-minute windows (`jobs.oo-agg.interval`), each written exactly once with its own ledger row.

1. `wait_until_eligible` waits (reschedule mode: no worker slot held) until `end + jobs.oo-agg.delay`.
2. `select_tenants` (alongside) lists enabled tenants, leaving out (ledger status `skipped`) windows before a new
   tenant's `initial_lookback` and tenants whose circuit breaker is open (`failure_threshold`
   consecutive failed windows). Clearing this task (or the run) resets the breaker; so does a change
   of the tenant's or job's configuration.
3. `aggregate` maps `OOToTimescaleOperator` over batches of `tenants_per_task` tenants (default 5): each
   tenant runs the run's windows in order; a failing tenant never stops the others, and the task then
   fails naming it. Its retry reruns only that tenant's failed window and those after it.

Clearing a run (or its `aggregate` task) reruns all of its windows; to rerun one minute, trigger
`obs_backfill` with `from`/`to` around it and `reprocess: true`. Clears and backfills rewrite the
same rows.
"""

_AGE_DOC = """
### obs_age_refresh: the active service-call graph (Apache AGE), five-minute windows

`wait_for_oo_agg` waits (deferred to the triggerer on Airflow 3) for the `obs_oo_agg` run(s) covering
the window (fails when one failed, times out after hours), then `refresh_graph` maps `AgeRefreshOperator` over the tenants for
T = the window end.
"""

_TOPO_DOC = """
### Topology from {source} ({job})

At each window end, `diff_topology` observes the tenants' {source} sources and records edge
changes in `topo_edge_time` (open / close validity intervals). Tenants without a `{source}` block are
not run.
"""
