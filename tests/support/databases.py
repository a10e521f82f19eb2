"""Fresh databases on the test Postgres server live in the dev kit (the Airflow harness needs them); tests import
them from here."""

from __future__ import annotations

from airflow_obs_provider.devkit.databases import as_role, create_database, drop_database, with_database

__all__ = ["as_role", "create_database", "drop_database", "with_database"]
