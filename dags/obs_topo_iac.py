"""obs_topo_iac: time-versioned topology from Terraform state, every 15 minutes.

Built by airflow_obs_provider.dag_factory.build_topology_dag("terraform").
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_topology_dag

dag = build_topology_dag("terraform", Path(__file__).parent)
