"""The one place that knows Airflow 2.11 from Airflow 3.x.

Everything Airflow-facing in this provider imports Airflow names from here. The
common-compat provider resolves most names (Airflow 3 path first); the rest is
chosen by version below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

_base = Version(Version(AIRFLOW_VERSION).base_version)
AIRFLOW_V_3_0_PLUS = _base >= Version("3.0.0")
AIRFLOW_V_3_2_PLUS = _base >= Version("3.2.0")

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import DAG, BaseHook, BaseOperator, BaseSensorOperator, Variable, task
    from airflow.sdk.observability.stats import Stats
    from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
else:  # Airflow 2.11
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models import DAG, BaseOperator, Variable  # type: ignore[no-redef,assignment]
    from airflow.sensors.base import BaseSensorOperator  # type: ignore[no-redef,assignment]
    from airflow.stats import Stats  # type: ignore[no-redef,attr-defined]
    from airflow.timetables.interval import (  # type: ignore[no-redef]
        CronDataIntervalTimetable,
        DeltaDataIntervalTimetable,
    )

# Names whose location moved between 2.11 and 3.x; common-compat resolves them (Airflow 3 path first).
from airflow.providers.common.compat.sdk import (  # noqa: E402
    AirflowFailException,
    Param,
    PokeReturnValue,
    get_current_context,
    task_group,
)

# The standard provider (>= 1.0) serves both versions from the same paths.
from airflow.providers.standard.operators.empty import EmptyOperator  # noqa: E402
from airflow.providers.standard.sensors.date_time import DateTimeSensor  # noqa: E402
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor  # noqa: E402

if TYPE_CHECKING:
    from airflow.utils.context import Context  # noqa: F401

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_VERSION",
    "AirflowFailException",
    "DAG",
    "DateTimeSensor",
    "EmptyOperator",
    "ExternalTaskSensor",
    "Param",
    "PokeReturnValue",
    "get_current_context",
    "task_group",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "CronDataIntervalTimetable",
    "DeltaDataIntervalTimetable",
    "Stats",
    "Variable",
    "task",
]
