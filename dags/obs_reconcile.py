"""obs_reconcile: rerun the obs_oo_agg windows whose OpenObserve source gained late records.

Built by airflow_obs_provider.dag_factory.build_reconcile_dag (task ids and config keys documented there).
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_reconcile_dag

dag = build_reconcile_dag(Path(__file__).parent)
