"""The provider installs beside every supported Airflow line and is discovered there.

For each of Airflow 3.3, 3.2 and 2.11, ``scripts/airflow-env`` builds a user's deployment from a
frozen constraint set and installs the provider with ``--constraint`` on it; the freeze before and
after shows that no package the deployment had moved. In each: the provider and its connection
type are discovered (``ProvidersManager``, ``airflow providers list``) and a DagBag of ``dags/``
loads all six DAGs without import errors. Each check runs in a fresh interpreter with its own
AIRFLOW_HOME, as a deployment loads the provider: through the ``apache_airflow_provider`` entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.airflow_envs import DEPLOYMENTS, deployment_venv, frozen

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Printed as JSON by a fresh interpreter of the Airflow under test.
PROBE = r"""
import json, os
from airflow import __version__
from airflow.providers_manager import ProvidersManager

pm = ProvidersManager()
provider = pm.providers.get("airflow-obs-provider")
hook_info = pm.hooks.get("openobserve")
widgets = {k: v.field_name for k, v in pm.connection_form_widgets.items() if k.startswith("extra__openobserve__")}
from airflow_obs_provider.hooks.openobserve import OpenObserveHook
print(json.dumps({
    "airflow": __version__,
    "provider_version": provider.version if provider else None,
    "hook_class": hook_info.hook_class_name if hook_info else None,
    "connection_type": hook_info.connection_type if hook_info else None,
    "widgets": sorted(widgets.values()),
    "behaviour": pm.field_behaviours.get("openobserve"),
    "api_config": OpenObserveHook("oo_probe").get_api_config(),
}))
"""

CONN = json.dumps({"conn_type": "openobserve", "host": "oo.example.com", "port": 5080, "schema": "https",
                   "login": "etl@example.com", "password": "probe-token", "extra": {"org": "acme"}})


def airflow_env(home: Path) -> dict[str, str]:
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_OO_PROBE": CONN, "PYTHONWARNINGS": "ignore"}


def probe(python: str, home: Path) -> dict:
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, env=airflow_env(home), cwd=home,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def providers_list(airflow_bin: Path, home: Path) -> list[dict]:
    out = subprocess.run([str(airflow_bin), "providers", "list", "-o", "json"], capture_output=True, text=True,
                         env=airflow_env(home), cwd=home, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index("["):])


def assert_discovered(found: dict, listed: list[dict]) -> None:
    from airflow_obs_provider import __version__

    assert found["provider_version"] == __version__
    assert found["hook_class"] == "airflow_obs_provider.hooks.openobserve.OpenObserveHook"
    assert found["connection_type"] == "openobserve"
    assert found["widgets"] == ["org", "verify_ssl"]
    assert found["behaviour"]["relabeling"]["password"] == "Token"
    assert found["api_config"] == {"base_url": "https://oo.example.com:5080", "org": "acme",
                                   "user": "etl@example.com", "password": "probe-token", "verify": True}
    assert {"package_name": "airflow-obs-provider", "version": __version__} in [
        {k: p.get(k) for k in ("package_name", "version")} for p in listed]


DAG_IDS = {"obs_oo_agg", "obs_age_refresh", "obs_topo_iac", "obs_topo_ansible", "obs_backfill", "obs_reconcile"}

# Printed as JSON by a fresh interpreter: what a DagBag of dags/ holds (DagBag moved in 3.x and
# lost ``include_examples`` in 3.3; examples stay off through AIRFLOW__CORE__LOAD_EXAMPLES).
DAGBAG = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()}}))
"""


def test_the_dev_venv_discovers_the_provider_and_connection_type(tmp_path: Path) -> None:
    found = probe(sys.executable, tmp_path)
    assert found["airflow"].startswith("3.")
    assert_discovered(found, providers_list(Path(sys.executable).parent / "airflow", tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("version", DEPLOYMENTS)
def test_installs_beside_a_frozen_deployment_without_moving_a_package(version: str, tmp_path: Path) -> None:
    venv = deployment_venv(version)
    before, after = frozen(venv / ".freeze-before"), frozen(venv / ".freeze-after")
    assert before["apache-airflow"].startswith(f"{version}."), before["apache-airflow"]
    assert {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v} == {}
    assert "drain3" not in after and "cachetools" not in set(after) - set(before)
    found = probe(str(venv / "bin" / "python"), tmp_path)
    assert found["airflow"] == before["apache-airflow"]
    assert_discovered(found, providers_list(venv / "bin" / "airflow", tmp_path))

    out = subprocess.run([str(venv / "bin" / "python"), "-c", DAGBAG, str(REPO / "dags")], capture_output=True,
                         text=True, env={**airflow_env(tmp_path), "OBS_ETL_CONFIG": str(REPO / "include" / "etl.yaml")},
                         cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    bag = json.loads(out.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert set(bag["dags"]) == DAG_IDS
