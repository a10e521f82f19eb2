"""Where the DAG tasks read the ETL configuration at run time (the order: orchestration.config_sources)."""

from __future__ import annotations

from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.orchestration.config_sources import NoConfigError, resolve_config
from airflow_obs_provider.version_compat import AirflowFailException, Variable


def runtime_config(fallback_file: str | None) -> tuple[EtlConfig, str | None]:
    """The configuration at task time, and the file path to hand to operators (None: env or Variable).

    Order: ``OBS_ETL_CONFIG`` file, Airflow Variable ``obs_etl_config``, the file found at parse time.
    """
    try:
        # positional default: the same call on Airflow 2.11 and 3.x
        return resolve_config(lambda name: Variable.get(name, None), fallback_file=fallback_file)
    except NoConfigError as exc:
        raise AirflowFailException(str(exc)) from None
