"""Builds the provider's DAGs; the files in ``dags/`` are one-line callers of these functions.

Stable names (other tooling, tests and users rely on them):

- DAG ids: ``obs_oo_agg``, ``obs_age_refresh``, ``obs_topo_iac``, ``obs_topo_ansible``, ``obs_backfill``,
  ``obs_reconcile``.
- Windowed DAGs: ``wait_until_eligible`` (sensor, reschedule mode) and ``select_tenants`` both feed the
  job's mapped task (``aggregate`` / ``refresh_graph`` / ``diff_topology``), one map index per batch of
  ``jobs.<job>.tenants_per_task`` tenants (named by its tenants). A run covers ``jobs.<job>.run_every``
  (oo-agg: 5 minutes), split into windows of ``jobs.<job>.interval`` that each tenant runs in turn, each
  its own ledger row. ``obs_age_refresh`` waits on ``wait_for_oo_agg`` (ExternalTaskSensor on the
  ``obs_oo_agg`` runs covering its window) instead.
  The task producing the mapped list has no upstream task on purpose: Airflow 2.11's
  ``dags backfill`` deadlocks on a mapped task whose list producer has an upstream of its own.
- ``obs_backfill``: ``plan_windows`` -> ``run_window`` (a reschedule-mode sensor mapped over batches of
  ``jobs.<job>.windows_per_task`` windows: it runs each window once it is eligible, through the
  operators' own path).
- ``obs_reconcile``: ``select_tenants`` -> ``reconcile`` (one map index per batch of tenants): every 15 minutes
  (``jobs.oo-agg.reconcile_interval``), the oo-agg windows whose source gained late records are rerun.

Parsing reads only the schedule-shaping keys of one local file (``OBS_ETL_CONFIG``, else
``include/etl.yaml`` beside the DAG folder; see ``orchestration.schedule``). Tasks resolve the
tenants at run time from ``OBS_ETL_CONFIG``, else the Airflow Variable ``obs_etl_config``, else
that same bundled file. Connection ids come from the ``airflow:`` block of the file
(``postgres_conn_id``, default ``obs_postgres``; optional ``aws_conn_id``, ``oo_conn_id``,
``file_list_conn_id``, looked up only when set).
"""

from __future__ import annotations

from airflow_obs_provider.dag_factory.backfill import BACKFILL_FUTURE_LIMIT, build_backfill_dag
from airflow_obs_provider.dag_factory.common import (
    POKE_SECONDS,
    TAGS,
    dag_failure_callback,
    default_args,
    first_window_start,
    job_window,
)
from airflow_obs_provider.dag_factory.config import runtime_config
from airflow_obs_provider.dag_factory.reconcile import (
    RECONCILE_INTERVAL,
    build_reconcile_dag,
    emit_reconcile_stats,
)
from airflow_obs_provider.dag_factory.scheduled import (
    build_age_refresh_dag,
    build_oo_agg_dag,
    build_topology_dag,
    oo_agg_logical_dates,
)

__all__ = [
    "BACKFILL_FUTURE_LIMIT", "POKE_SECONDS", "RECONCILE_INTERVAL", "TAGS", "build_age_refresh_dag",
    "build_backfill_dag", "build_oo_agg_dag", "build_reconcile_dag", "build_topology_dag", "dag_failure_callback",
    "default_args", "emit_reconcile_stats", "first_window_start", "job_window", "oo_agg_logical_dates",
    "runtime_config",
]
