"""Simulated user deployments of Airflow (``scripts/airflow-env VERSION``): a venv holding exactly the
frozen set of ``scripts/constraints-airflow-VERSION.txt``, with this provider installed under
``--constraint`` on that freeze. Built once per pyproject/constraints change and cached."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The Airflow lines the product supports, newest first: each has a constraints file in scripts/.
DEPLOYMENTS = ("3.3", "3.2", "2.11")


@functools.cache
def deployment_venv(version: str) -> Path:
    """The venv of a user's Airflow ``version`` deployment with this provider (built on first use)."""
    started = time.monotonic()
    out = subprocess.run(["bash", str(REPO / "scripts" / "airflow-env"), version], capture_output=True, text=True,
                         timeout=1800, env={**os.environ, "OBS_PYTHON": os.environ.get("OBS_PYTHON", sys.executable)})
    if out.returncode != 0:
        raise RuntimeError(f"scripts/airflow-env {version} failed rc={out.returncode}:\n{out.stderr[-3000:]}")
    venv = Path(out.stdout.strip().splitlines()[-1])
    print(f"[airflow-env] Airflow {version} deployment ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return venv


def frozen(path: Path) -> dict[str, str]:
    """``name -> version`` of a ``pip freeze`` file (names normalised as pip compares them)."""
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins
