"""A task's batch of tenants and windows (WindowRunner): each window its own ledger row; one tenant's
failure never stops another; a retry skips what its attempt finished; a clear reruns everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.oo_agg_db import content_by_urn, ledger

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.ledger import RunInfo
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, floor_time, parse_time
from airflow_obs_provider.jobs import oo_agg

pytestmark = pytest.mark.integration

T0 = parse_time("2024-05-01T10:00:00Z")
MIN = timedelta(minutes=1)
WINDOWS = [Window(T0 + i * MIN, T0 + (i + 1) * MIN) for i in range(3)]
CONFIG = """
jobs:
  oo-agg: {delay: 0s, initial_lookback: 100000h}
tenants:
  - {code: acme, source: {kind: local, path: oo, org: default}}
  - {code: globex, source: {kind: local, path: gone, org: default}}
  - {code: initech, source: {kind: local, path: oo, org: default}}
"""


@pytest.fixture()
def runner_env(airflow_home: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    generate(Storage.local(tmp_path / "oo"), T0, T0 + 4 * MIN, seed=7)
    config = tmp_path / "etl.yaml"
    config.write_text(CONFIG)
    monkeypatch.setenv("AIRFLOW_CONN_OBS_POSTGRES", "postgres://" + pg_url.split("://", 1)[1])
    return config


def _runner(config: Path, run_info: RunInfo):  # type: ignore[no-untyped-def]
    from airflow_obs_provider.operators.windowed import WindowRunner

    cfg = load_config(config)
    return WindowRunner("oo-agg", load_config=lambda: cfg, postgres_conn_id="obs_postgres", connections={},
                        run_info=run_info)


def _attempts(pg_url: str, tenant: str) -> dict[datetime, tuple[str, int]]:
    return {row[0]: (row[2], row[3]) for row in ledger(pg_url, tenant=tenant)}


def test_a_failing_tenant_does_not_stop_the_others_and_a_retry_runs_only_what_is_left(
        runner_env: Path, pg_url: str) -> None:
    first = RunInfo(dag_id="obs_oo_agg", run_id="scheduled__2024-05-01T10:00:00+00:00", try_number=1)
    outcome = _runner(runner_env, first).run_batch(["acme", "globex", "initech"], WINDOWS, first_try=1)
    # globex's source root is missing: its first window failed and its later ones were not tried
    assert set(outcome.failures) == {"globex"} and outcome.failed_windows["globex"] == WINDOWS[0]
    assert "gone" in str(outcome.failures["globex"])
    assert [(r.tenant_code, r.window) for r in outcome.results] == [
        *(("acme", w) for w in WINDOWS), *(("initech", w) for w in WINDOWS)]
    assert _attempts(pg_url, "acme") == {w.start: ("success", 1) for w in WINDOWS}
    assert _attempts(pg_url, "globex") == {}  # refused before its ledger row: nothing to undo
    with pytest.raises(Exception, match="gone"):  # one failed tenant: its own error fails the task
        outcome.raise_failures("oo-agg")

    # The source appears; the automatic retry (try 2 of the attempt that began at try 1) runs only globex.
    (runner_env.parent / "gone").symlink_to(runner_env.parent / "oo")
    retry = RunInfo(first.dag_id, first.run_id, try_number=2)
    outcome = _runner(runner_env, retry).run_batch(["acme", "globex", "initech"], WINDOWS, first_try=1)
    assert not outcome.failures and outcome.already_done == 2 * len(WINDOWS)
    assert [(r.tenant_code, r.window) for r in outcome.results] == [("globex", w) for w in WINDOWS]
    assert _attempts(pg_url, "acme") == {w.start: ("success", 1) for w in WINDOWS}  # not run again
    assert _attempts(pg_url, "globex") == {w.start: ("success", 1) for w in WINDOWS}

    # A clear starts a new attempt (first try = the current one): every window runs again, same rows.
    before = content_by_urn(pg_url, "acme")
    cleared = RunInfo(first.dag_id, first.run_id, try_number=3)
    outcome = _runner(runner_env, cleared).run_batch(["acme"], WINDOWS, first_try=3)
    assert outcome.already_done == 0 and len(outcome.results) == len(WINDOWS)
    assert _attempts(pg_url, "acme") == {w.start: ("success", 2) for w in WINDOWS}
    assert content_by_urn(pg_url, "acme") == before

    # Another DAG run's successes are not this attempt's: nothing is skipped for it.
    other = RunInfo(first.dag_id, "manual__other", try_number=2)
    assert _runner(runner_env, other).run_batch(["initech"], WINDOWS[:1], first_try=1).already_done == 0


def test_a_failed_window_stops_its_tenant_and_the_retry_resumes_there(runner_env: Path, pg_url: str) -> None:
    # The last window is not eligible yet (it ends in the future): the tenant stops there, the window
    # after it is never tried, and a retry skips the two finished ones and fails at the same place.
    now = floor_time(datetime.now(UTC), MIN)
    windows = [*WINDOWS[:2], Window(now + 2 * MIN, now + 3 * MIN), Window(now + 3 * MIN, now + 4 * MIN)]
    info = RunInfo(dag_id="obs_backfill", run_id="manual__batch", try_number=1)
    outcome = _runner(runner_env, info).run_batch(["initech"], windows, first_try=1)
    assert outcome.failed_windows == {"initech": windows[2]}
    assert [r.window for r in outcome.results] == windows[:2]
    assert not {windows[2].start, windows[3].start} & set(_attempts(pg_url, "initech"))  # refused, never tried
    after_first_try = _attempts(pg_url, "initech")

    retry = RunInfo(info.dag_id, info.run_id, try_number=2)
    outcome = _runner(runner_env, retry).run_batch(["initech"], windows, first_try=1)
    assert outcome.already_done == 2 and not outcome.results
    assert outcome.failed_windows == {"initech": windows[2]}
    assert _attempts(pg_url, "initech") == after_first_try  # nothing finished was run again


def test_several_failed_tenants_fail_the_task_naming_each(runner_env: Path) -> None:
    from airflow_obs_provider.operators.windowed import BatchFailed

    (runner_env.parent / "etl2.yaml").write_text(CONFIG.replace("path: oo,", "path: missing,"))
    info = RunInfo(dag_id="obs_oo_agg", run_id="scheduled__several", try_number=1)
    outcome = _runner(runner_env.parent / "etl2.yaml", info).run_batch(["acme", "globex"], WINDOWS[:1],
                                                                      first_try=1)
    with pytest.raises(BatchFailed, match=r"2 tenants failed \(acme at .*; globex at .*\)"):
        outcome.raise_failures("oo-agg")


def test_the_engine_run_of_the_same_windows_gives_the_same_rows(runner_env: Path, pg_url: str,
                                                                pg_server_url: str) -> None:
    """A batch writes exactly what one window at a time through the engine writes."""
    from support.databases import create_database, drop_database

    from airflow_obs_provider.engine.bootstrap import bootstrap

    oracle = create_database(pg_server_url, "t_batches_oracle")
    try:
        bootstrap(oracle)
        cfg = load_config(runner_env)
        for w in WINDOWS:
            oo_agg.run(cfg, "acme", w, pg_url=oracle)
        _runner(runner_env, RunInfo("d", "r", 1)).run_batch(["acme"], WINDOWS, first_try=1)
        assert content_by_urn(pg_url, "acme") == content_by_urn(oracle, "acme")
    finally:
        drop_database(pg_server_url, oracle)
