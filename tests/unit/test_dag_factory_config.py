"""Where the DAG tasks read the configuration: OBS_ETL_CONFIG, the Airflow Variable, the parse-time file."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_obs_provider.dag_factory import runtime_config


def _yaml(code: str) -> str:
    return f"tenants:\n  - {{code: {code}, source: {{kind: local, path: data}}}}\n"


@pytest.fixture()
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_home: Path) -> dict[str, Path]:
    monkeypatch.delenv("OBS_ETL_CONFIG", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_OBS_ETL_CONFIG", raising=False)
    paths = {}
    for code in ("from_env", "fallback"):
        paths[code] = tmp_path / f"{code}.yaml"
        paths[code].write_text(_yaml(code))
    return paths


def test_the_env_file_wins_over_the_variable_and_the_fallback(files: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_ETL_CONFIG", str(files["from_env"]))
    monkeypatch.setenv("AIRFLOW_VAR_OBS_ETL_CONFIG", _yaml("from_variable"))
    cfg, path = runtime_config(str(files["fallback"]))
    assert [t.code for t in cfg.tenants] == ["from_env"]
    assert path is None  # operators read the env var themselves


def test_the_variable_wins_over_the_fallback_file(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # AIRFLOW_VAR_* is Airflow's own environment-variable secrets backend for Variables.
    monkeypatch.setenv("AIRFLOW_VAR_OBS_ETL_CONFIG", _yaml("from_variable"))
    cfg, path = runtime_config(str(files["fallback"]))
    assert [t.code for t in cfg.tenants] == ["from_variable"]
    assert path is None


def test_the_parse_time_file_is_the_last_resort_and_is_handed_on(files: dict[str, Path]) -> None:
    cfg, path = runtime_config(str(files["fallback"]))
    assert [t.code for t in cfg.tenants] == ["fallback"]
    assert path == str(files["fallback"])


def test_without_any_configuration_the_task_fails_naming_both_places(files: dict[str, Path], tmp_path: Path) -> None:
    from airflow_obs_provider.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException, match="OBS_ETL_CONFIG.*obs_etl_config"):
        runtime_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(AirflowFailException, match="no obs-etl configuration"):
        runtime_config(None)
