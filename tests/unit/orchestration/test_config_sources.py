"""The one order of configuration sources, without Airflow: explicit file, OBS_ETL_CONFIG, Variable, fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_obs_provider.orchestration.config_sources import CONFIG_VARIABLE, NoConfigError, resolve_config


def _yaml(code: str) -> str:
    return f"tenants:\n  - {{code: {code}, source: {{kind: local, path: data}}}}\n"


def _file(tmp_path: Path, code: str) -> str:
    path = tmp_path / f"{code}.yaml"
    path.write_text(_yaml(code))
    return str(path)


def _tenant(result: tuple[object, str | None]) -> str:
    cfg, _ = result
    return cfg.tenants[0].code  # type: ignore[attr-defined]


def test_each_source_wins_over_the_ones_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def variables(name: str) -> str | None:
        asked.append(name)
        return _yaml("from_variable") if name == CONFIG_VARIABLE else None

    fallback = _file(tmp_path, "fallback")
    monkeypatch.setenv("OBS_ETL_CONFIG", _file(tmp_path, "from_env"))
    explicit = _file(tmp_path, "explicit")
    assert resolve_config(variables, config_path=explicit, fallback_file=fallback) == (
        resolve_config(variables, config_path=explicit)[0], explicit)
    assert _tenant(resolve_config(variables, fallback_file=fallback)) == "from_env"
    monkeypatch.delenv("OBS_ETL_CONFIG")
    assert resolve_config(variables, fallback_file=fallback)[1] is None
    assert _tenant(resolve_config(variables, fallback_file=fallback)) == "from_variable"
    assert asked and set(asked) == {CONFIG_VARIABLE}  # the Variable is asked only when no file was named
    assert resolve_config(variables, config_variable="other", fallback_file=fallback)[1] == fallback
    with pytest.raises(NoConfigError, match="Airflow Variable other"):
        resolve_config(variables, config_variable="other")
