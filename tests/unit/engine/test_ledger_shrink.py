"""The ledger's shrink guard as plain arithmetic (the database side is in tests/integration)."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.ledger import SHRINK_FRACTION, ShrinkRefused, check_shrink, shrunk_parts
from airflow_obs_provider.engine.window import Window

W = Window("2024-05-01T10:04:00Z", "2024-05-01T10:05:00Z")


def test_a_part_below_the_fraction_of_its_last_success_has_shrunk() -> None:
    before = {"metrics/cpu": 1000, "logs/app": 400, "traces/default": 0}
    assert SHRINK_FRACTION == 0.5
    assert shrunk_parts(before, {"metrics/cpu": 1000, "logs/app": 400}) == []
    assert shrunk_parts(before, {"metrics/cpu": 500, "logs/app": 200}) == []  # exactly half is not "sharply"
    assert shrunk_parts(before, {"metrics/cpu": 499, "logs/app": 400}) == [("metrics/cpu", 1000, 499)]
    assert shrunk_parts(before, {"logs/app": 400, "metrics/new": 5000}) == [("metrics/cpu", 1000, 0)]
    assert shrunk_parts(before, {"metrics/cpu": 2000, "logs/app": 900}) == []  # late data only adds


def test_totals_of_older_versions_compare_with_the_sum() -> None:
    assert shrunk_parts({"total": 100}, {"a": 30, "b": 30}) == []
    assert shrunk_parts({"total": 100}, {"a": 30, "b": 10}) == [("total", 100, 40)]


def test_refusal_names_window_counts_and_the_way_to_force() -> None:
    check_shrink("oo-agg", "acme", W, None, {})  # never succeeded: a quiet first run passes
    check_shrink("oo-agg", "acme", W, {"metrics/cpu": 0}, {})
    with pytest.raises(ShrinkRefused) as err:
        check_shrink("oo-agg", "acme", W, {"metrics/cpu": 1200, "logs/app": 30}, {"logs/app": 30})
    text = str(err.value)
    assert str(W) in text and "yields 30 records where the last successful run read 1230" in text
    assert "metrics/cpu: 1200 -> 0" in text and "--allow-shrink" in text and '"reprocess": "force"' in text
