"""TopologyDiffOperator inside a real Airflow task run (``dag.test`` in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg2
import pytest
from support.airflow_stack import airflow_conn_uri

from airflow_obs_provider.engine.config import load_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

_DAG_FILE = textwrap.dedent('''
    import os
    from datetime import datetime, timedelta, timezone

    from airflow_obs_provider.operators.topology_diff import TopologyDiffOperator
    from airflow_obs_provider.version_compat import DAG, DeltaDataIntervalTimetable

    for source in ("terraform", "ansible"):
        with DAG(dag_id="topo_operator_test_" + source, schedule=DeltaDataIntervalTimetable(timedelta(hours=1)),
                 start_date=datetime(2026, 3, 1, tzinfo=timezone.utc), catchup=False) as dag:
            TopologyDiffOperator(task_id="diff_topology", source=source, tenant=os.environ["TOPO_TEST_TENANT"],
                                 postgres_conn_id="obs_pg")
        globals()[dag.dag_id] = dag
''')


@pytest.mark.parametrize("source, job", [("terraform", "topo-iac"), ("ansible", "topo-ansible")])
def test_operator_records_an_observation_at_the_data_interval_end(pg_url: str, airflow_home: Path, tmp_path: Path,
                                                                  source: str, job: str) -> None:
    shutil.copytree(REPO / "include" / "terraform", tmp_path / "terraform")
    shutil.copytree(REPO / "include" / "ansible", tmp_path / "ansible")
    tenant = f"op{uuid.uuid4().hex[:8]}"
    config = tmp_path / "etl.yaml"
    config.write_text(json.dumps({"tenants": [{
        "code": tenant, "source": {"kind": "local", "path": "oo", "org": "default"},
        "terraform": {"states": ["terraform"]},
        "ansible": {"project": "ansible", "inventory": ["inventory/hosts.ini", "inventory/edge.yml"],
                    "playbooks": ["playbooks/site.yml"]},
    }]}))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "topo_operator_test.py").write_text(_DAG_FILE)
    env = {**os.environ, "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW_CONN_OBS_PG": airflow_conn_uri(pg_url),
           "OBS_ETL_CONFIG": str(config), "TOPO_TEST_TENANT": tenant, "PYTHONPATH": str(REPO)}
    for args in (["dags", "reserialize"], ["dags", "test", f"topo_operator_test_{source}", "2026-03-01T05:00:00+00:00"]):
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT r.window_from, r.window_to, r.status, r.dag_id, r.run_id FROM etl_job_run r "
                    "JOIN dim_tenant t ON t.id = r.tenant_id WHERE t.code = %s AND r.job = %s", (tenant, job))
        rows = cur.fetchall()
        assert len(rows) == 1
        window_from, window_to, status, dag_id, run_id = rows[0]
        # a manual run with logical date 05:00 covers the data interval ending at 05:00 (Airflow 3)
        assert (window_to.isoformat(), status, dag_id) == ("2026-03-01T05:00:00+00:00", "success",
                                                            f"topo_operator_test_{source}")
        assert window_to - window_from == load_config(config).job(job).interval
        assert run_id
        cur.execute("SELECT count(*), min(lower(valid)) FROM topo_edge_time e JOIN dim_tenant t "
                    "ON t.id = e.tenant_id WHERE t.code = %s AND e.source = %s", (tenant, source))
        count, opened_at = cur.fetchone()
        assert count > 20 and opened_at == window_to  # observation time = data_interval_end
