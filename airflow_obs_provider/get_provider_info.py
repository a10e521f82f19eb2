"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

This module imports no Airflow code: ProvidersManager calls it during discovery.
The OpenObserve connection form is declared here once; Airflow >= 3.2 reads
``conn-fields`` / ``ui-field-behaviour`` directly, and the hook turns the same
declaration into the form methods Airflow 2 calls.
"""

from __future__ import annotations

from typing import Any

from airflow_obs_provider import __version__

OPENOBSERVE_DEFAULT_ORG = "default"

OPENOBSERVE_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "org": {
        "label": "Organisation",
        "description": "OpenObserve organisation (the {org} in /api/{org}/...).",
        "schema": {"type": ["string", "null"], "default": OPENOBSERVE_DEFAULT_ORG},
    },
    "verify_ssl": {
        "label": "Verify TLS certificate",
        "description": "Check the server's certificate on https (turn off only for self-signed test servers).",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}

OPENOBSERVE_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": [],
    "relabeling": {"login": "Service account e-mail", "password": "Token", "schema": "Scheme (http or https)"},
    "placeholders": {
        "host": "openobserve.example.com",
        "port": "5080",
        "schema": "https",
        "login": "etl@example.com",
    },
}


def get_provider_info() -> dict[str, Any]:
    # Airflow < 3.2 ignores the declarative keys and asks the hook's form methods instead.
    connection = {
        "connection-type": "openobserve",
        "hook-class-name": "airflow_obs_provider.hooks.openobserve.OpenObserveHook",
        "hook-name": "OpenObserve",
        "conn-fields": OPENOBSERVE_CONN_FIELDS,
        "ui-field-behaviour": OPENOBSERVE_UI_FIELD_BEHAVIOUR,
    }
    return {
        "package-name": "airflow-obs-provider",
        "name": "Observability ETL Suite",
        "description": "OpenObserve logs, metrics and traces to PostgreSQL/TimescaleDB aggregates, "
        "an Apache AGE service-call graph and a time-versioned topology.",
        "versions": [__version__],
        "connection-types": [connection],
        "hooks": [
            {
                "integration-name": "OpenObserve",
                "python-modules": ["airflow_obs_provider.hooks.openobserve"],
            }
        ],
    }
