"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_obs_provider import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-obs-provider",
        "name": "Observability ETL Suite",
        "description": "OpenObserve logs, metrics and traces to PostgreSQL/TimescaleDB aggregates, "
        "an Apache AGE service-call graph and a time-versioned topology.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "openobserve",
                "hook-class-name": "airflow_obs_provider.hooks.openobserve.OpenObserveHook",
            }
        ],
    }
