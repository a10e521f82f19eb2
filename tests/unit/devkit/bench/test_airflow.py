"""The plan and configuration of ``obs-etl bench airflow`` (the bench itself runs in tests/e2e)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from airflow_obs_provider.devkit.bench.airflow import PER_WINDOW_SHAPE, SOLO, chunks, make_plan, write_config
from airflow_obs_provider.engine.config import load_config

T = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def test_chunks_are_consecutive_whole_minutes_of_nearly_equal_size() -> None:
    assert chunks(T, T + 60 * M, 2) == [(T, T + 30 * M), (T + 30 * M, T + 60 * M)]
    assert [int((b - a) / M) for a, b in chunks(T, T + 10 * M, 3)] == [4, 3, 3]
    assert chunks(T, T + 2 * M, 5) == [(T, T + M), (T + M, T + 2 * M)]


def test_full_plan_is_the_issues_cases_on_five_minute_boundaries_in_the_past() -> None:
    now = datetime(2026, 3, 1, 10, 7, 31, tzinfo=UTC)
    plan = make_plan(quick=False, parallelism=2, per_window=False, now=now)
    assert (plan.a_windows, plan.b_tenants, plan.b_windows) == (60, 10, 10)
    assert plan.start.minute % 5 == 0 and plan.start.second == 0
    assert plan.a_range[1] < now - timedelta(minutes=10)  # eligible long before (delay 1m)
    quick = make_plan(quick=True, parallelism=3, per_window=True, now=now)
    assert (quick.a_windows, quick.b_tenants, quick.b_windows, quick.parallelism) == (10, 3, 5, 3)
    assert quick.run_every_minutes == 1


def test_config_bounds_the_catch_up_to_case_b_and_leaves_case_a_tenant_to_the_backfill(tmp_path: Path) -> None:
    plan = make_plan(quick=False, parallelism=2, per_window=False, now=T)
    (tmp_path / "oo").mkdir()
    cfg = load_config(str(write_config(tmp_path / "etl.yaml", tmp_path / "oo", plan)))
    assert [t.code for t in cfg.tenants if t.enabled] == [f"t{i:02d}" for i in range(1, 11)]
    assert not cfg.tenant(SOLO).enabled
    raw = yaml.safe_load((tmp_path / "etl.yaml").read_text())
    b0, b1 = plan.b_range
    assert (raw["start_date"], raw["end_date"]) == (b0.strftime("%Y-%m-%dT%H:%M:%SZ"), b1.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert not set(PER_WINDOW_SHAPE) & set(raw["jobs"]["oo-agg"])  # batched: the defaults


def test_per_window_shape_writes_the_keys_of_one_window_and_one_tenant_per_task(tmp_path: Path) -> None:
    plan = make_plan(quick=True, parallelism=2, per_window=True, now=T)
    raw = yaml.safe_load(write_config(tmp_path / "etl.yaml", tmp_path / "oo", plan).read_text())
    assert PER_WINDOW_SHAPE.items() <= raw["jobs"]["oo-agg"].items()
