"""obs_topo_ansible: time-versioned topology from the Ansible inventory and roles, every hour.

Built by airflow_obs_provider.dag_factory.build_topology_dag("ansible").
"""

from pathlib import Path

from airflow_obs_provider.dag_factory import build_topology_dag

dag = build_topology_dag("ansible", Path(__file__).parent)
