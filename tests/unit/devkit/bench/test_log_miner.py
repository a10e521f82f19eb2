"""``obs-etl bench patterns``: its synthetic streams have the shape their names promise."""

from __future__ import annotations

from airflow_obs_provider.devkit.bench.log_miner import skeletons, stream_with_distinct_fraction
from airflow_obs_provider.engine.log_mining.masks import apply_masks, digit_key


def _masked(line: str) -> str:
    return apply_masks(digit_key(line))


def test_skeletons_have_nearly_pairwise_distinct_masked_forms() -> None:
    lines = skeletons(500)
    # known: "Executing with tokens: worker=x" masks the worker word as the tokens' value, so the
    # few skeletons of that template share one form; every other skeleton is distinct
    forms = {_masked(line) for line in lines if not line.startswith("Executing with tokens:")}
    assert len(forms) == sum(not line.startswith("Executing with tokens:") for line in lines) > 490


def test_a_stream_has_the_requested_fraction_of_distinct_masked_forms() -> None:
    lines = stream_with_distinct_fraction(2000, 0.05)
    assert len(lines) == 2000
    assert len({_masked(line) for line in lines}) == 100
    # numbers still differ between lines of one form: raw lines are far more varied than their forms
    assert len(set(lines)) > 1000


def test_a_fraction_of_one_gives_a_form_per_skeleton() -> None:
    lines = stream_with_distinct_fraction(300, 1.0)
    assert {_masked(line) for line in lines} == {_masked(line) for line in skeletons(300)}
