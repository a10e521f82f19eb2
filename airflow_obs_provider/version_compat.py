"""The one place that knows Airflow 2.11 from Airflow 3.x.

Everything Airflow-facing in this provider imports Airflow names from here. The
common-compat provider resolves most names (Airflow 3 path first); the rest is
chosen by version below. Only names the provider uses belong here: each import
costs time on every DAG parse.
"""

from __future__ import annotations

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

_base = Version(Version(AIRFLOW_VERSION).base_version)
AIRFLOW_V_3_0_PLUS = _base >= Version("3.0.0")
AIRFLOW_V_3_3_PLUS = _base >= Version("3.3.0")  # templated start_from_trigger (DateTimeSensorAsync)

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import DAG, BaseHook, BaseOperator, Variable, task
    from airflow.sdk.observability.stats import Stats
    from airflow.timetables.interval import DeltaDataIntervalTimetable
else:  # Airflow 2.11
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]
    from airflow.models import DAG, BaseOperator, Variable  # type: ignore[no-redef,assignment]
    from airflow.stats import Stats  # type: ignore[no-redef,attr-defined]
    from airflow.timetables.interval import DeltaDataIntervalTimetable  # type: ignore[no-redef]

# Names whose location moved between 2.11 and 3.x; common-compat resolves them (Airflow 3 path first).
from airflow.providers.common.compat.sdk import (  # noqa: E402
    AirflowException,
    AirflowFailException,
    Param,
    PokeReturnValue,
)

# The standard provider (>= 1.0) serves both versions from the same paths.
from airflow.providers.standard.operators.empty import EmptyOperator  # noqa: E402
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor  # noqa: E402

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "DAG",
    "EmptyOperator",
    "ExternalTaskSensor",
    "Param",
    "PokeReturnValue",
    "BaseHook",
    "BaseOperator",
    "DeltaDataIntervalTimetable",
    "Stats",
    "Variable",
    "task",
]
