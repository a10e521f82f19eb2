"""obs_oo_agg: OpenObserve logs, metrics and traces -> TimescaleDB aggregates in one-minute windows.

Built by airflow_obs_provider.dag_factory.build_oo_agg_dag (task ids and config keys documented there).
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_oo_agg_dag

dag = build_oo_agg_dag(Path(__file__).parent)
