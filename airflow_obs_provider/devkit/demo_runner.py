"""The demo's DAG runs in one Airflow process: ``python -m airflow_obs_provider.devkit.demo_runner STEPS RESULTS``.

``airflow dags test`` once per DAG paid Airflow's start-up and a parse of the DAG folder for every
step; here the DAG folder is parsed once and each step is a ``dag.test`` in the same process (the
same code path, the same metadata DB and task logs). STEPS is a JSON list of
``{"label", "dag_id", "logical_date" (ISO or null), "conf" (object or null)}``; one JSON line per
finished step (``label``, ``state``, ``seconds``) is appended to RESULTS as it finishes, so the
caller can print progress while the rest runs. Run it with the demo's Airflow environment
(``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``, ...) already set.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

from airflow_obs_provider.engine.window import parse_time


def _test_kwargs(dag: Any, logical_date: str | None, conf: dict[str, Any] | None) -> dict[str, Any]:
    """``dag.test`` arguments for Airflow 3 (``logical_date``) and 2.11 (``execution_date``)."""
    kwargs: dict[str, Any] = {"run_conf": conf}
    if logical_date is not None:
        name = "logical_date" if "logical_date" in inspect.signature(dag.test).parameters else "execution_date"
        kwargs[name] = parse_time(logical_date)
    return kwargs


def main(argv: list[str]) -> int:
    steps = json.loads(Path(argv[1]).read_text())
    results = Path(argv[2])
    from airflow_obs_provider.version_compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models import DagBag  # type: ignore[no-redef,attr-defined]
    from airflow.configuration import conf as airflow_conf

    bag = DagBag(dag_folder=airflow_conf.get("core", "dags_folder"))  # examples: AIRFLOW__CORE__LOAD_EXAMPLES
    failed = 0
    for step in steps:
        started = time.monotonic()
        state = "import error"
        dag = bag.get_dag(step["dag_id"])
        if dag is not None:
            run = dag.test(**_test_kwargs(dag, step.get("logical_date"), step.get("conf")))
            state = str(getattr(run, "state", "unknown")).rsplit(".", 1)[-1].lower()
        failed += state != "success"
        with results.open("a") as out:
            out.write(json.dumps({"label": step["label"], "state": state,
                                  "seconds": round(time.monotonic() - started, 1)}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
