"""Airflow 3.x (this venv) and Airflow 2.11 (the venv scripts/airflow2-env builds) discover the provider.

Each check runs in a fresh interpreter with its own AIRFLOW_HOME, as a user's
deployment would load the provider: through the ``apache_airflow_provider`` entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_airflow3_discovers_the_provider_and_connection_type(tmp_path: Path) -> None:
    found = probe(sys.executable, tmp_path)
    assert found["airflow"].startswith("3.")
    assert_discovered(found, providers_list(Path(sys.executable).parent / "airflow", tmp_path))


@pytest.mark.slow
def test_airflow2_discovers_the_provider_and_connection_type(tmp_path: Path) -> None:
    """Builds (first time only) and uses the cached Airflow 2.11 venv of scripts/airflow2-env."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "airflow2-env")], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    venv = Path(out.stdout.strip().splitlines()[-1])
    found = probe(str(venv / "bin" / "python"), tmp_path)
    assert found["airflow"].startswith("2.11.")
    assert_discovered(found, providers_list(venv / "bin" / "airflow", tmp_path))
