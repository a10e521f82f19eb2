"""obs_backfill: run one job over a past range, exactly once per aligned window.

Trigger with conf {job, tenant, from, to, reprocess}; built by airflow_obs_provider.dag_factory.build_backfill_dag.
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_backfill_dag

dag = build_backfill_dag(Path(__file__).parent)
