"""obs_age_refresh: the active service-call graph in Apache AGE, refreshed every five minutes.

Built by airflow_obs_provider.dag_factory.build_age_refresh_dag (waits for the five obs_oo_agg runs of its window).
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_age_refresh_dag

dag = build_age_refresh_dag(Path(__file__).parent)
