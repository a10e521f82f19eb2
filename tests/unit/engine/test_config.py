"""ETL configuration: defaults, overrides, validation messages, paths (include/etl.yaml is the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_obs_provider.engine.config import JOB_NAMES, ConfigError, load_config, load_config_text

REPO = Path(__file__).resolve().parents[3]

MINIMAL = """
tenants:
  - code: t1
    source: {kind: local, path: data}
"""


def test_shipped_example_config_loads() -> None:
    cfg = load_config(REPO / "include" / "etl.yaml")
    assert cfg.tenant("default").source["kind"] == "local"
    assert set(JOB_NAMES) <= set(cfg.jobs)
    # No fixed start: the DAGs start at yesterday's midnight and initial_lookback bounds catch-up.
    assert cfg.start_date is None
    assert cfg.job("oo-agg").initial_lookback == timedelta(hours=24)


def test_job_defaults_keep_bucket_reads_behind_the_wal_horizon() -> None:
    cfg = load_config_text(MINIMAL)
    agg = cfg.job("oo-agg")
    assert (agg.interval, agg.align) == (timedelta(minutes=1), timedelta(minutes=1))
    assert agg.delay > timedelta(minutes=10)  # OO keeps the newest ~10 minutes only in its WAL
    assert cfg.job("topo-ansible").interval == timedelta(hours=1)


def test_overrides_and_unknown_options_are_kept() -> None:
    cfg = load_config_text(MINIMAL + """
jobs:
  oo-agg: {interval: 5m, align: 5m, delay: 15m, max_active_runs: 2, batch_rows: 1000}
start_date: "2026-01-01T00:00:00+01:00"
""")
    agg = cfg.job("oo-agg")
    assert (agg.interval, agg.delay, agg.max_active_runs) == (timedelta(minutes=5), timedelta(minutes=15), 2)
    assert agg.options == {"batch_rows": 1000}
    assert cfg.start_date == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_initial_lookback_precedence_job_then_top_level_then_default() -> None:
    # the origin brief's shape (tenants: {list, initial_lookback}) and a top-level map both work;
    # a job's own initial_lookback wins over either, and the top-level map over the tenants-level one
    cfg = load_config_text("""
tenants:
  initial_lookback: {oo-agg: 3h, topo-iac: 5h}
  list:
    - code: t1
      source: {kind: local, path: data}
initial_lookback: {topo-iac: 6h}
jobs:
  age-refresh: {initial_lookback: 2h}
""")
    assert [t.code for t in cfg.tenants] == ["t1"]
    assert cfg.job("oo-agg").initial_lookback == timedelta(hours=3)
    assert cfg.job("topo-iac").initial_lookback == timedelta(hours=6)
    assert cfg.job("age-refresh").initial_lookback == timedelta(hours=2)
    assert cfg.job("topo-ansible").initial_lookback == timedelta(hours=168)
    over = load_config_text(MINIMAL + "initial_lookback: {oo-agg: 3h}\njobs:\n  oo-agg: {initial_lookback: 30m}\n")
    assert over.job("oo-agg").initial_lookback == timedelta(minutes=30)


def test_relative_paths_resolve_beside_the_file(tmp_path: Path) -> None:
    f = tmp_path / "etl.yaml"
    f.write_text(MINIMAL)
    cfg = load_config(f)
    assert cfg.resolve_path("data") == tmp_path / "data"
    assert cfg.resolve_path("/abs/data") == Path("/abs/data")


def test_env_vars_expand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_TEST_BUCKET", "bucket-from-env")
    cfg = load_config_text("tenants:\n  - code: t\n    source: {kind: s3, bucket: $OBS_TEST_BUCKET}\n")
    assert cfg.tenant("t").source["bucket"] == "bucket-from-env"


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "YAML mapping"),
    ("tenants: []\n", "non-empty list"),
    ("tenants:\n  - name: x\n", r"tenants\[0\] needs a 'code'"),
    ("tenants:\n  - code: t\n    source: {kind: ftp}\n", "local, s3 or api"),
    (MINIMAL + "jobs:\n  oo-agg: {delay: soon}\n", "jobs.oo-agg: invalid duration"),
    # window widths must fit the tables' grains (issue 12 D2)
    (MINIMAL + "jobs:\n  oo-agg: {interval: 7s, align: 7s}\n", r"jobs.oo-agg.interval 0:00:07 does not fit"),
    (MINIMAL + "jobs:\n  oo-agg: {interval: 1.5m}\n", r"jobs.oo-agg.interval 0:01:30 does not fit"),
    (MINIMAL + "jobs:\n  oo-agg: {align: 30s}\n", r"jobs.oo-agg.align 0:00:30 does not fit"),
    (MINIMAL + "jobs:\n  oo-agg: {interval: 0s}\n", r"jobs.oo-agg.interval 0:00:00 does not fit"),
    (MINIMAL + "jobs:\n  age-refresh: {interval: 1m, align: 1m}\n", r"multiple of 0:05:00"),
    (MINIMAL + "jobs:\n  oo-agg: {interval: 3m, align: 2m}\n", r"interval 0:03:00 must be a whole multiple"),
    (MINIMAL + "jobs:\n  topo-iac: {delay: -5m}\n", "invalid duration"),
    ("tenants:\n  - code: t\n    allow_shrink: yes please\n", r"tenants\[0\].allow_shrink must be true or false"),
    ("tenants: [\n", "not valid YAML"),
])
def test_invalid_configs_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_text(text)


def test_unknown_tenant_and_job_are_reported() -> None:
    cfg = load_config_text(MINIMAL)
    with pytest.raises(ConfigError, match="tenant 'nope'"):
        cfg.tenant("nope")
    with pytest.raises(ConfigError, match="unknown job"):
        cfg.job("nope")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("jobs", [
    "oo-agg: {interval: 5m, align: 1m}", "oo-agg: {interval: 2m, align: 2m}", "age-refresh: {interval: 10m}",
    "topo-iac: {interval: 90s, align: 90s}",
])
def test_window_widths_on_the_tables_grain_are_accepted(jobs: str) -> None:
    load_config_text(MINIMAL + f"jobs:\n  {jobs}\n")


def test_runs_cover_several_windows_and_tasks_take_batches_by_default() -> None:
    cfg = load_config_text(MINIMAL)
    oo = cfg.job("oo-agg")
    assert (oo.interval, oo.run_every, oo.schedule) == (timedelta(minutes=1), timedelta(minutes=5),
                                                         timedelta(minutes=5))
    assert (oo.windows_per_task, oo.tenants_per_task) == (30, 5)
    assert cfg.job("age-refresh").schedule == cfg.job("age-refresh").interval  # one window per run
    # The default five-minute run only where it holds whole windows; one window per run otherwise.
    assert load_config_text(MINIMAL + "jobs:\n  oo-agg: {interval: 2m, align: 2m}\n").job("oo-agg").schedule == \
        timedelta(minutes=2)
    one = load_config_text(MINIMAL + "jobs:\n  oo-agg: {run_every: 1m, windows_per_task: 1, tenants_per_task: 1}\n")
    assert (one.job("oo-agg").schedule, one.job("oo-agg").windows_per_task) == (timedelta(minutes=1), 1)


@pytest.mark.parametrize(("jobs", "message"), [
    ("oo-agg: {run_every: 90s}", "run_every 0:01:30 must be a positive whole multiple of jobs.oo-agg.interval"),
    ("oo-agg: {interval: 2m, align: 2m, run_every: 5m}", "run_every 0:05:00 must be a positive whole multiple"),
    ("oo-agg: {windows_per_task: 0}", "jobs.oo-agg: windows_per_task must be a whole number of at least 1"),
    ("age-refresh: {tenants_per_task: many}", "jobs.age-refresh: tenants_per_task must be a whole number"),
])
def test_bad_batching_keys_are_named(jobs: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config_text(MINIMAL + f"jobs:\n  {jobs}\n")
