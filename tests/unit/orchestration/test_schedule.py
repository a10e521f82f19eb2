"""Parse-time schedule settings: one local file at most, defaults without it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_obs_provider.orchestration.schedule import (
    CONFIG_ENV,
    DEFAULT_POSTGRES_CONN_ID,
    find_config_file,
    schedule_settings,
)

CONFIG = """
start_date: 2026-03-01T10:07:00Z
end_date: 2026-03-02T00:00:00Z
airflow: {postgres_conn_id: warehouse, aws_conn_id: lake}
jobs:
  oo-agg: {interval: 1m, delay: 3m, max_active_runs: 7}
  age-refresh: {interval: 5m, align: 5m}
tenants:
  - {code: acme, source: {kind: local, path: data}}
"""


@pytest.fixture()
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def test_settings_come_from_the_file_named_by_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "etl.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    s = schedule_settings(None)
    assert s.config_file == path
    assert s.start_date == datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    assert s.end_date == datetime(2026, 3, 2, tzinfo=UTC)
    assert s.job("oo-agg").delay == timedelta(minutes=3)
    assert s.job("oo-agg").max_active_runs == 7
    assert s.postgres_conn_id == "warehouse"
    assert s.aws_conn_id == "lake"


def test_include_file_beside_the_dag_folder_is_found(tmp_path: Path, no_env: None) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "etl.yaml").write_text(CONFIG)
    assert find_config_file(tmp_path / "dags") == tmp_path / "include" / "etl.yaml"
    assert schedule_settings(tmp_path / "dags").job("oo-agg").max_active_runs == 7


def test_without_any_file_defaults_apply_and_start_is_yesterday_midnight(tmp_path: Path, no_env: None) -> None:
    now = datetime(2026, 5, 17, 13, 45, tzinfo=UTC)
    s = schedule_settings(tmp_path / "dags", now=now)
    assert s.config_file is None
    assert s.start_date == datetime(2026, 5, 16, tzinfo=UTC)
    assert s.end_date is None
    assert s.job("oo-agg").interval == timedelta(minutes=1)
    assert s.job("age-refresh").interval == timedelta(minutes=5)
    assert s.job("topo-iac").interval == timedelta(minutes=15)
    assert s.job("topo-ansible").interval == timedelta(hours=1)
    assert s.postgres_conn_id == DEFAULT_POSTGRES_CONN_ID


def test_a_file_without_tenants_still_shapes_the_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "etl.yaml"
    path.write_text("start_date: 2026-02-01T00:00:00Z\njobs: {oo-agg: {delay: 90s}}\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    s = schedule_settings(None)
    assert s.start_date == datetime(2026, 2, 1, tzinfo=UTC)
    assert s.job("oo-agg").delay == timedelta(seconds=90)
    # Jobs the file leaves out keep their defaults.
    assert s.job("age-refresh").interval == timedelta(minutes=5)
    assert s.job("topo-ansible").interval == timedelta(hours=1)


def test_a_broken_file_falls_back_to_defaults_instead_of_breaking_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "etl.yaml"
    path.write_text("jobs: {oo-agg: {delay: soon}}\ntenants: [{code: a}]\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    s = schedule_settings(None, now=datetime(2026, 5, 17, tzinfo=UTC))
    assert s.job("oo-agg").delay == timedelta(minutes=12)
    assert s.start_date == datetime(2026, 5, 16, tzinfo=UTC)
