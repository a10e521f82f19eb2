"""Any order of window runs, with repeats and concurrent duplicates, ends identical to one clean run."""

from __future__ import annotations

import threading

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.databases import create_database, drop_database
from support.oo_agg_db import content_by_urn, write_config

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import Window, parse_time, split_range
from airflow_obs_provider.jobs.oo_agg import run

pytestmark = pytest.mark.integration

START, END = parse_time("2024-05-01T10:03:00Z"), parse_time("2024-05-01T10:11:00Z")
WINDOWS = list(split_range(START, END, parse_time("2024-05-01T10:01:00Z") - parse_time("2024-05-01T10:00:00Z")))


def _content(pg_url: str) -> dict:
    c = content_by_urn(pg_url, "acme")
    # locator ids differ; object keys and hints are compared through the locators list
    return c


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str):  # type: ignore[no-untyped-def]
    from airflow_obs_provider.engine.bootstrap import bootstrap

    root = tmp_path_factory.mktemp("oo_replay")
    generate(Storage.local(root / "oo"), parse_time("2024-05-01T09:55:00Z"), parse_time("2024-05-01T10:14:00Z"),
             seed=3)
    cfg = load_config(write_config(root, "{kind: local, path: oo, org: default}"))
    clean = create_database(pg_server_url, "t_oo_replay_clean")
    bootstrap(clean)
    for w in WINDOWS:
        run(cfg, "acme", w, pg_url=clean)
    yield cfg, _content(clean)
    drop_database(pg_server_url, clean)


def _run_batch(cfg, pg_url: str, batch: list[Window]) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def one(w: Window) -> None:
        try:
            run(cfg, "acme", w, pg_url=pg_url)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(w,)) for w in batch]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_with_repeats_and_concurrent_duplicates_equals_one_clean_run(data, setup, pg_server_url) -> None:  # type: ignore[no-untyped-def]
    from airflow_obs_provider.engine.bootstrap import bootstrap

    cfg, clean = setup
    order = data.draw(st.permutations(WINDOWS))
    repeats = data.draw(st.lists(st.sampled_from(WINDOWS), max_size=4))
    # batches run concurrently: some hold a window twice (a concurrent duplicate)
    sequence = list(order) + repeats
    batches: list[list[Window]] = []
    i = 0
    while i < len(sequence):
        size = data.draw(st.integers(1, 3))
        batch = sequence[i:i + size]
        if data.draw(st.booleans()):
            batch.append(batch[0])
        batches.append(batch)
        i += size
    url = create_database(pg_server_url, "t_oo_replay")
    try:
        bootstrap(url)
        for batch in batches:
            _run_batch(cfg, url, batch)
        got = _content(url)
        assert got["metrics"] == clean["metrics"]
        assert got["calls"] == clean["calls"]
        assert got["locators"] == clean["locators"]
        assert got["resources"] == clean["resources"]
    finally:
        drop_database(pg_server_url, url)


def _patterns(pg_url: str) -> dict[str, list[tuple]]:
    """Every column of log_pattern, log_pattern_5m (by URN) and the aliases, without surrogate ids."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT fingerprint, template, severity, first_seen, last_seen, sample FROM log_pattern "
                        "ORDER BY fingerprint")
            patterns = cur.fetchall()
            cur.execute("""SELECT c.bucket, r.urn, c.fingerprint, c.count, c.count_error FROM log_pattern_5m c
                           JOIN dim_resource r ON r.id = c.resource_id ORDER BY 1, 2, 3""")
            counts = cur.fetchall()
            cur.execute("SELECT old_fingerprint, new_fingerprint FROM log_pattern_alias ORDER BY 1")
            return {"log_pattern": patterns, "log_pattern_5m": counts, "aliases": cur.fetchall()}
    finally:
        conn.close()


def test_log_pattern_samples_do_not_depend_on_the_order_ranges_run_in(setup, pg_server_url) -> None:  # type: ignore[no-untyped-def]
    """Run 10:05-10:10 then 10:00-10:05, and the other way round: identical log_pattern rows."""
    from airflow_obs_provider.engine.bootstrap import bootstrap

    cfg, _ = setup
    minute = WINDOWS[1].start - WINDOWS[0].start
    early = list(split_range(parse_time("2024-05-01T10:00:00Z"), parse_time("2024-05-01T10:05:00Z"), minute))
    late = list(split_range(parse_time("2024-05-01T10:05:00Z"), parse_time("2024-05-01T10:10:00Z"), minute))
    got = []
    for order in (early + late, late + early):
        url = create_database(pg_server_url, "t_oo_replay_samples")
        try:
            bootstrap(url)
            for w in order:
                run(cfg, "acme", w, pg_url=url)
            got.append(_patterns(url))
        finally:
            drop_database(pg_server_url, url)
    forward, backward = got
    assert len(forward["log_pattern"]) > 10
    assert forward == backward
