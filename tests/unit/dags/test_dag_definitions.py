"""The DAG files import cleanly and their timetables give aligned, non-zero windows (real Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_obs_provider.engine.window import floor_time

REPO = Path(__file__).resolve().parents[3]
DAG_IDS = {"obs_oo_agg", "obs_age_refresh", "obs_topo_iac", "obs_topo_ansible", "obs_backfill", "obs_reconcile"}
UNSCHEDULED_CATCHUP = {"obs_backfill", "obs_reconcile"}  # triggered, or a pass that looks back by itself
# A run's data interval: jobs.<job>.run_every (oo-agg: five one-minute windows by default), else one window.
WIDTH = {"obs_oo_agg": timedelta(minutes=5), "obs_age_refresh": timedelta(minutes=5),
         "obs_topo_iac": timedelta(minutes=15), "obs_topo_ansible": timedelta(hours=1)}

CONFIG = """
start_date: 2026-03-01T10:07:30Z
jobs:
  oo-agg: {delay: 2m, max_active_runs: 3}
tenants:
  - {code: acme, source: {kind: local, path: data}}
"""


@pytest.fixture(scope="module")
def dagbag(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    from airflow.dag_processing.dagbag import DagBag

    config = tmp_path_factory.mktemp("cfg") / "etl.yaml"
    config.write_text(CONFIG)
    mp = pytest.MonkeyPatch()
    mp.setenv("OBS_ETL_CONFIG", str(config))
    try:
        yield DagBag(dag_folder=str(REPO / "dags"))
    finally:
        mp.undo()


def test_every_dag_imports_without_errors(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert set(dagbag.dag_ids) == DAG_IDS  # type: ignore[attr-defined]


def test_dags_set_catchup_tags_docs_owner_and_retries_explicitly(dagbag: object) -> None:
    for dag_id in DAG_IDS:
        dag = dagbag.get_dag(dag_id)  # type: ignore[attr-defined]
        assert dag.catchup is (dag_id not in UNSCHEDULED_CATCHUP)
        assert "obs-etl" in dag.tags and dag.doc_md
        for t in dag.tasks:
            assert t.owner == "obs-etl"
        retried = [t for t in dag.tasks if t.task_id in ("aggregate", "refresh_graph", "diff_topology")]
        for t in retried:
            assert t.retries >= 1 and t.retry_exponential_backoff
            assert t.max_retry_delay == timedelta(minutes=5)
    assert dagbag.get_dag("obs_oo_agg").max_active_runs == 3  # type: ignore[attr-defined]


def _windows(dag: object, count: int) -> list[tuple[datetime, datetime, datetime]]:
    from airflow.timetables.base import TimeRestriction

    timetable = dag.timetable  # type: ignore[attr-defined]
    restriction = TimeRestriction(dag.start_date, None, catchup=True)  # type: ignore[attr-defined]
    out, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        last = info.data_interval
        out.append((last.start, last.end, info.logical_date))
    return out


@pytest.mark.parametrize("dag_id", sorted(WIDTH))
def test_windows_have_the_job_width_and_alignment_and_never_zero_width(dagbag: object, dag_id: str) -> None:
    dag = dagbag.get_dag(dag_id)  # type: ignore[attr-defined]
    windows = _windows(dag, 6)
    width = WIDTH[dag_id]
    configured_start = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
    assert windows[0][0] >= configured_start  # the first window never starts before the start date
    assert windows[0][0] - configured_start < width
    for (start, end, logical), nxt in zip(windows, windows[1:] + [None], strict=True):
        assert end - start == width  # never zero: a data-interval timetable, not a trigger one
        assert int(start.timestamp()) % int(width.total_seconds()) == 0
        assert logical == start  # the ExternalTaskSensor mapping relies on this
        if nxt is not None:
            assert nxt[0] == end  # contiguous: no gap, no overlap


def test_age_refresh_waits_for_the_obs_oo_agg_run_covering_its_window(dagbag: object) -> None:
    from airflow_obs_provider.dag_factory import oo_agg_logical_dates

    dag = dagbag.get_dag("obs_age_refresh")  # type: ignore[attr-defined]
    sensor = dag.get_task("wait_for_oo_agg")
    assert sensor.external_dag_id == "obs_oo_agg"
    assert list(sensor.failed_states) == ["failed"] and sensor.timeout > 0 and sensor.mode == "reschedule"
    start, end, logical = _windows(dag, 1)[0]
    dates = sensor.execution_date_fn(logical, data_interval_start=start, data_interval_end=end)
    oo_windows = {w[2] for w in _windows(dagbag.get_dag("obs_oo_agg"), 12)}  # type: ignore[attr-defined]
    assert dates == [start]  # one five-minute obs_oo_agg run covers the window
    assert set(dates) <= oo_windows  # every awaited logical date is a real obs_oo_agg run
    assert oo_agg_logical_dates(logical, start, end, step_seconds=300) == dates
    # obs_oo_agg on one-minute runs: the five runs inside; on ten-minute runs: the one run covering it
    assert oo_agg_logical_dates(logical, start, end, step_seconds=60) == [start + timedelta(minutes=i)
                                                                         for i in range(5)]
    ten = timedelta(minutes=10)
    assert oo_agg_logical_dates(logical, start, end, step_seconds=600) == [floor_time(start, ten)]


def test_backfill_dag_has_no_schedule_and_a_conf_form(dagbag: object) -> None:
    dag = dagbag.get_dag("obs_backfill")  # type: ignore[attr-defined]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered only (UI or REST)
    assert set(dag.params.keys()) == {"job", "tenant", "from", "to", "reprocess"}
    assert dag.get_task("run_window").partial_kwargs["mode"] == "reschedule"  # waits hold no worker


def test_reconcile_dag_runs_every_15_minutes_one_map_index_per_tenant_batch(dagbag: object) -> None:
    dag = dagbag.get_dag("obs_reconcile")  # type: ignore[attr-defined]
    assert dag.timetable._delta == timedelta(minutes=15)
    assert dag.max_active_runs == 1
    assert {t.task_id for t in dag.tasks} == {"select_tenants", "reconcile", "done"}
    assert dag.get_task("reconcile").upstream_task_ids == {"select_tenants"}


def test_dags_parse_without_any_configuration(airflow_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    # A copy of the DAG files with no include/etl.yaml beside them and no OBS_ETL_CONFIG.
    dags = tmp_path / "dags"
    dags.mkdir()
    for f in (REPO / "dags").glob("*.py"):
        (dags / f.name).write_text(f.read_text())
    monkeypatch.delenv("OBS_ETL_CONFIG", raising=False)
    before = datetime.now(UTC)
    bag = DagBag(dag_folder=str(dags))
    after = datetime.now(UTC)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    assert bag.get_dag("obs_oo_agg").start_date <= datetime.now(UTC)
    # the default start: yesterday's midnight UTC (catch-up covers at most about two days)
    day = timedelta(days=1)
    assert bag.get_dag("obs_oo_agg").start_date in {floor_time(before - day, day), floor_time(after - day, day)}


def test_an_unaligned_manual_window_is_refused_without_retries(airflow_home: Path) -> None:
    from airflow_obs_provider.dag_factory import job_window
    from airflow_obs_provider.engine.config import parse_config
    from airflow_obs_provider.version_compat import AirflowFailException

    job = parse_config({"tenants": [{"code": "a"}]}).job("topo-ansible")
    aligned = {"data_interval_start": datetime(2026, 3, 1, 9, tzinfo=UTC),
               "data_interval_end": datetime(2026, 3, 1, 10, tzinfo=UTC)}
    assert job_window(aligned, job).end == datetime(2026, 3, 1, 10, tzinfo=UTC)
    shifted = {"data_interval_start": datetime(2026, 3, 1, 9, 10, tzinfo=UTC),
               "data_interval_end": datetime(2026, 3, 1, 10, 10, tzinfo=UTC)}
    with pytest.raises(AirflowFailException, match="not aligned to 1:00:00"):
        job_window(shifted, job)
