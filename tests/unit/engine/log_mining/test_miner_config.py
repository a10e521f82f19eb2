"""MinerConfig.from_overrides: tenant overrides are typed like their defaults; bad values are named."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.log_mining.config import MinerConfig


def test_overrides_take_the_type_of_their_default() -> None:
    cfg = MinerConfig.from_overrides({"sim_th": "0.5", "depth": "5", "max_tokens": 80.0, "max_children": 7})
    assert cfg.sim_th == 0.5 and isinstance(cfg.sim_th, float)
    assert (cfg.depth, cfg.max_tokens, cfg.max_children) == (5, 80, 7)
    assert all(isinstance(v, int) for v in (cfg.depth, cfg.max_tokens, cfg.max_children))
    assert MinerConfig.from_overrides({"sim_th": 1}).sim_th == 1.0


@pytest.mark.parametrize(("overrides", "message"), [
    ({"max_tokens": 2.5}, "max_tokens must be a whole number"),
    ({"depth": "4.7"}, "depth must be a whole number"),
    ({"max_children": True}, "max_children must be a number"),
    ({"sim_th": "high"}, "sim_th must be a number"),
    ({"sim_th": None}, "sim_th must be a number"),
    ({"sim_th": float("nan")}, "sim_th must be in"),
])
def test_bad_values_are_rejected_with_their_name(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MinerConfig.from_overrides(overrides)


def test_unknown_options_are_listed() -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['simth'\]"):
        MinerConfig.from_overrides({"simth": 0.5, "depth": 4})
