"""The e2e Airflow harness lives in the dev kit (``obs-etl bench airflow`` uses it too); tests import it from here."""

from __future__ import annotations

from airflow_obs_provider.devkit.airflow_stack import (
    ADMIN_USER,
    TERMINAL_RUN_STATES,
    AirflowRest,
    AirflowStack,
    airflow_conn_uri,
    create_database,
    drop_database,
    free_port,
    progress,
    sqlalchemy_url,
    wait_for,
    with_database,
)

__all__ = ["ADMIN_USER", "TERMINAL_RUN_STATES", "AirflowRest", "AirflowStack", "airflow_conn_uri", "create_database",
           "drop_database", "free_port", "progress", "sqlalchemy_url", "wait_for", "with_database"]
