"""Where the ETL configuration comes from, decided here and only here.

- Parse time (the scheduler parses DAG files every few seconds: one local file, never a database):
  :func:`find_config_file` -- ``OBS_ETL_CONFIG``, else ``include/etl.yaml`` beside the DAG folder.
- Run time (tasks): :func:`resolve_config` -- an explicit file (an operator's ``config_path``), else
  ``OBS_ETL_CONFIG``, else the Airflow Variable (``obs_etl_config`` unless an operator names
  another), else the file found at parse time (the scheduled DAGs' and ``obs_backfill``'s fallback).

No Airflow import: the caller hands in how to read a Variable (``Variable.get``), so this order is
tested without Airflow and the orchestration layer stays Airflow-free.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from airflow_obs_provider.engine.config import EtlConfig, load_config, load_config_text

CONFIG_ENV = "OBS_ETL_CONFIG"
CONFIG_VARIABLE = "obs_etl_config"


class NoConfigError(LookupError):
    """No source holds a configuration."""


def find_config_file(dags_dir: Path | None) -> Path | None:
    """``OBS_ETL_CONFIG`` if set, else ``include/etl.yaml`` beside the DAG folder (repo or wheel)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    if dags_dir is not None:
        candidate = dags_dir.resolve().parent / "include" / "etl.yaml"
        if candidate.is_file():
            return candidate
    return None


def resolve_config(read_variable: Callable[[str], str | None], *, config_path: str | None = None,
                   config_variable: str | None = None,
                   fallback_file: str | None = None) -> tuple[EtlConfig, str | None]:
    """The configuration at task time, and the file it came from when that file is to be handed on
    (None when it came from ``OBS_ETL_CONFIG`` or a Variable, which every task reads itself).

    ``read_variable`` returns the Variable's text or None; it may raise instead (the operators let
    Airflow's own "Variable does not exist" error through). Called at execute time only: reading a
    Variable at parse time would hit the metadata DB on every DAG parse.
    """
    if config_path:
        return load_config(config_path), config_path
    if os.environ.get(CONFIG_ENV):
        return load_config(os.environ[CONFIG_ENV]), None
    text = read_variable(config_variable or CONFIG_VARIABLE)  # read once: the metadata DB is asked once
    if text is not None:
        return load_config_text(text), None
    if fallback_file and Path(fallback_file).is_file():
        return load_config(fallback_file), fallback_file
    raise NoConfigError(
        f"no obs-etl configuration: set {CONFIG_ENV} to a YAML file or create the Airflow Variable "
        f"{config_variable or CONFIG_VARIABLE} holding it (see include/etl.yaml)")
