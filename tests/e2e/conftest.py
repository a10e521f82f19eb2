"""End-to-end fixtures: generated OO data, a config, a real Airflow 3 stack, a clean reference run.

One Airflow stack serves the whole session (catch-up, clear, backfill, UI, StatsD): the
tests that need the caught-up state depend on ``caught_up``, which unpauses ``obs_oo_agg``
once and waits until every catch-up run has succeeded.

The data range is recent (about 40 minutes ago, aligned to 5 minutes) so it lies inside
every tenant's ``initial_lookback`` and is eligible at once (``delay`` is 3 minutes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.airflow_stack import AirflowStack, airflow_conn_uri, create_database, drop_database, progress
from support.e2e_env import (
    DAG_ID,
    REPO,
    WINDOW,
    WINDOWS,
    Airflow3,
    CaughtUp,
    CleanRuns,
    DataRange,
    generate_data,
    obs_etl,
    run_window,
    statsd_env,
    write_config,
)
from support.statsd_listener import StatsdListener


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.airflow_e2e)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def data_range() -> DataRange:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=40)
    start -= timedelta(minutes=start.minute % 5)
    return DataRange(start=start, end=start + WINDOWS * WINDOW)


@pytest.fixture(scope="session")
def e2e_data(tmp_path_factory: pytest.TempPathFactory, data_range: DataRange) -> Path:
    started = time.monotonic()
    root = generate_data(tmp_path_factory.mktemp("oo_data"), data_range)
    progress(f"generated OO data in {time.monotonic() - started:.1f}s")
    return root


@pytest.fixture(scope="session")
def e2e_config(tmp_path_factory: pytest.TempPathFactory, e2e_data: Path, data_range: DataRange) -> Path:
    return write_config(tmp_path_factory.mktemp("config") / "etl.yaml", e2e_data, data_range)


@pytest.fixture(scope="session")
def clean_runs(pg_server_url: str, e2e_config: Path) -> Iterator[CleanRuns]:
    runs = CleanRuns(pg_server_url, e2e_config)
    yield runs
    runs.close()


@pytest.fixture(scope="session")
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.stop()


@pytest.fixture(scope="session")
def target_db(pg_server_url: str) -> Iterator[str]:
    """The Postgres database the DAGs write to (connection ``obs_postgres``), schema bootstrapped."""
    url = create_database(pg_server_url, "e2e_target")
    obs_etl("bootstrap", "--pg-url", url)
    yield url
    drop_database(pg_server_url, url)


@pytest.fixture(scope="session")
def airflow3(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, e2e_config: Path, target_db: str,
             statsd: StatsdListener) -> Iterator[Airflow3]:
    """Airflow 3 (LocalExecutor): api-server, scheduler, dag-processor, triggerer; StatsD towards ``statsd``."""
    stack = AirflowStack(
        root=tmp_path_factory.mktemp("airflow3"), dags_folder=REPO / "dags", pg_server_url=pg_server_url,
        name="af3", env_overrides={
            "OBS_ETL_CONFIG": str(e2e_config),
            "AIRFLOW_CONN_OBS_POSTGRES": airflow_conn_uri(target_db),
            "PG_URL": target_db,
            **statsd_env(statsd.port),
        })
    try:
        started = time.monotonic()
        rest = stack.start()
        progress(f"af3 stack up in {time.monotonic() - started:.1f}s")
        yield Airflow3(stack=stack, rest=rest, target_url=target_db, config=e2e_config)
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def caught_up(airflow3: Airflow3, data_range: DataRange) -> CaughtUp:
    """Unpause obs_oo_agg and wait until every catch-up run over the data range has finished."""
    rest = airflow3.rest
    rest.wait_dag(DAG_ID)
    started = time.monotonic()
    rest.set_paused(DAG_ID, False)
    rest.wait_runs(DAG_ID, WINDOWS, timeout=900, select=lambda r: run_window(r)[0] < data_range.end)
    # The scheduler creates runs progressively: look again for late ones and let them finish too.
    time.sleep(10)
    runs = rest.wait_runs(DAG_ID, WINDOWS, timeout=300)
    windows = [run_window(r) for r in runs]
    return CaughtUp(runs=runs, start=min(w[0] for w in windows), end=max(w[1] for w in windows),
                    seconds=time.monotonic() - started)
