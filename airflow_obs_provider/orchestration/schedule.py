"""Parse-time settings of the DAGs: only values that shape the schedule.

The scheduler parses DAG files every few seconds, so parsing reads at most one
local YAML file (``OBS_ETL_CONFIG``, else ``include/etl.yaml`` beside the DAG
folder) and never a database, a Variable or the network. Tenants are resolved
at run time by a task (see ``selection``). With no file at all the DAGs still
parse, on built-in defaults.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from airflow_obs_provider.engine.config import ConfigError, EtlConfig, JobConfig, parse_config
from airflow_obs_provider.engine.window import floor_time
from airflow_obs_provider.orchestration.config_sources import CONFIG_ENV, find_config_file

__all__ = ["CONFIG_ENV", "ScheduleSettings", "find_config_file", "schedule_settings"]

log = logging.getLogger(__name__)

DEFAULT_POSTGRES_CONN_ID = "obs_postgres"
# Without a configured start date the DAGs start at yesterday's midnight (UTC):
# a far-past constant would make catch-up create a run per minute since then.
_DEFAULT_START_BACK = timedelta(days=1)


@dataclass(frozen=True)
class ScheduleSettings:
    """What the DAG definitions may depend on; everything else is read by tasks at run time."""

    jobs: dict[str, JobConfig]
    start_date: datetime
    end_date: datetime | None = None
    config_file: Path | None = None
    connections: dict[str, str] = field(default_factory=dict)

    def job(self, name: str) -> JobConfig:
        return self.jobs[name]

    @property
    def postgres_conn_id(self) -> str:
        return self.connections.get("postgres_conn_id", DEFAULT_POSTGRES_CONN_ID)

    # Optional connections: only looked up when configured (local sources need none).
    @property
    def aws_conn_id(self) -> str | None:
        return self.connections.get("aws_conn_id")

    @property
    def oo_conn_id(self) -> str | None:
        return self.connections.get("oo_conn_id")

    @property
    def file_list_conn_id(self) -> str | None:
        return self.connections.get("file_list_conn_id")


def _default_jobs() -> dict[str, JobConfig]:
    # parse_config needs one tenant; the demo tenant only lends its shape here.
    cfg = parse_config({"tenants": [{"code": "demo"}]})
    return dict(cfg.jobs)


def schedule_settings(dags_dir: Path | None = None, *, now: datetime | None = None) -> ScheduleSettings:
    """Read the schedule-shaping keys; a missing or unusable file falls back to defaults with a warning."""
    path = find_config_file(dags_dir)
    raw: dict[str, Any] = {}
    cfg: EtlConfig | None = None
    if path is not None:
        try:
            loaded = yaml.safe_load(os.path.expandvars(path.read_text()))
            raw = loaded if isinstance(loaded, dict) else {}
            # Tenants are a run-time matter: a file without them still shapes the schedule.
            cfg = parse_config({**raw, "tenants": raw.get("tenants") or [{"code": "demo"}]},
                               base_dir=path.resolve().parent)
        except (OSError, yaml.YAMLError, ConfigError) as exc:
            # A broken file must not break parsing of every DAG: the tasks report it clearly at run time.
            log.warning("obs-etl: schedule settings from %s unusable (%s); using defaults", path, exc)
            cfg = None
    # parse_config fills in every job of JOB_NAMES, so either source has them all.
    jobs = dict(cfg.jobs) if cfg is not None else _default_jobs()
    moment = now or datetime.now(UTC)
    start = cfg.start_date if cfg is not None and cfg.start_date else floor_time(moment - _DEFAULT_START_BACK,
                                                                              timedelta(days=1))
    end = cfg.end_date if cfg is not None else None
    airflow_block = raw.get("airflow") if isinstance(raw.get("airflow"), dict) else {}
    connections = {k: str(v) for k, v in (airflow_block or {}).items() if k.endswith("_conn_id") and v}
    return ScheduleSettings(jobs=jobs, start_date=start, end_date=end, config_file=path, connections=connections)
