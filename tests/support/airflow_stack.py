"""The e2e Airflow harness lives in the dev kit (``obs-etl bench airflow`` uses it too); tests import it from here."""

from __future__ import annotations

from airflow_obs_provider.devkit.airflow_stack import *  # noqa: F403 - its __all__, re-exported
