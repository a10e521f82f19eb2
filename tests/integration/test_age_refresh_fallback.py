"""age-refresh on a database where Apache AGE is not installed: the relational fallback carries the feature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from support.age_scenarios import (
    Call,
    expected_edges,
    ledger_status,
    relational_edges,
    sql_truth,
    tenant_id,
    write_calls,
)
from support.databases import create_database, drop_database

from airflow_obs_provider.engine.age_graph import age_unavailable_reason
from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.jobs.age_refresh import run

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.fixture(scope="module")
def no_age_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database bootstrapped with AGE left out, as on managed Postgres services without it."""
    url = create_database(pg_server_url, "t_age_fallback")
    report = bootstrap(url, skip_extensions=["age"])
    assert "age" not in report.extensions and not report.features["age_graph"]
    yield url
    drop_database(pg_server_url, url)


def test_without_age_the_refresh_keeps_the_relational_edges(no_age_url: str, caplog: pytest.LogCaptureFixture) -> None:
    t = tenant_id(no_age_url, "plain")
    calls = [Call(T0, "urn:svc:web", "urn:svc:api", 120, 6, 30.0),
             Call(T0 + 5 * M, "urn:svc:web", "urn:svc:api", 60, 0, 45.0),
             Call(T0, "urn:svc:api", "urn:svc:'$$\\ü", 10, 10, None)]
    write_calls(no_age_url, t, calls)
    with caplog.at_level("WARNING"):
        result = run("plain", T0 + 10 * M, pg_url=no_age_url)
    assert result.status == "success"
    assert result.details["graph_mode"] == "relational"
    assert "AGE extension is not installed" in result.details["age_unavailable"]
    assert "Apache AGE unavailable" in caplog.text and "active_call_edge" in caplog.text
    truth = sql_truth(no_age_url, t, T0 + 10 * M)
    assert relational_edges(no_age_url, t) == truth == expected_edges(t, calls, T0 + 10 * M)
    with psycopg2.connect(no_age_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'age'")
        assert cur.fetchone()[0] == 0  # the refresh did not sneak AGE in
        cur.execute("SELECT applied_at, graph_mode, edges FROM age_refresh_state WHERE tenant_id = %s", (t,))
        assert cur.fetchone() == (T0 + 10 * M, "relational", 2)


def test_without_age_ordering_and_expiry_still_hold(no_age_url: str) -> None:
    t = tenant_id(no_age_url, "plain-order")
    calls = [Call(T0, "urn:svc:a", "urn:svc:stops", 5, 0, 1.0),
             Call(T0 + 5 * M, "urn:svc:a", "urn:svc:b", 7, 1, 2.0),
             Call(T0 + 10 * M, "urn:svc:a", "urn:svc:b", 9, 0, 3.0)]
    write_calls(no_age_url, t, calls)
    run("plain-order", T0 + 10 * M, pg_url=no_age_url)
    assert set(relational_edges(no_age_url, t)) == {(t, "urn:svc:a", "urn:svc:stops"), (t, "urn:svc:a", "urn:svc:b")}
    run("plain-order", T0 + 15 * M, pg_url=no_age_url)
    latest = relational_edges(no_age_url, t)
    assert latest == expected_edges(t, calls, T0 + 15 * M)
    assert set(latest) == {(t, "urn:svc:a", "urn:svc:b")}
    assert run("plain-order", T0 + 10 * M, pg_url=no_age_url).status == "skipped"
    assert ledger_status(no_age_url, t, T0 + 10 * M) == "skipped"
    assert relational_edges(no_age_url, t) == latest


def test_a_role_that_may_not_read_ages_catalog_gets_a_reason_not_an_error(pg_url: str) -> None:
    """AGE installed and the graph bootstrapped, but this role may not read ag_catalog (AGE's catalog
    belongs to whoever created the extension): the refresh must fall back, not fail."""
    conn = psycopg2.connect(pg_url)
    try:
        cur = conn.cursor()
        assert age_unavailable_reason(cur) is None  # the owner may use the graph
        cur.execute("CREATE ROLE t_no_age_catalog")
        cur.execute("REVOKE SELECT ON ag_catalog.ag_label, ag_catalog.ag_graph FROM PUBLIC")
        cur.execute("SET ROLE t_no_age_catalog")
        reason = age_unavailable_reason(cur)
    finally:
        conn.rollback()  # role, grants and SET ROLE all undone
        conn.close()
    assert reason is not None and "may not read AGE's catalog" in reason
