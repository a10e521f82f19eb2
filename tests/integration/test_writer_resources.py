"""dim_resource upserts: first/last seen widen, the latest observation's labels win whatever the
order windows arrive in, and an upsert that changes nothing leaves the row untouched."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest

from airflow_obs_provider.engine.aggregate.resources import SeenResource
from airflow_obs_provider.engine.db import ensure_tenant
from airflow_obs_provider.engine.writer import upsert_resources

pytestmark = pytest.mark.integration

URN = "urn:svc:checkout"
MIN = 60_000_000
T = 1_714_557_600_000_000  # 2024-05-01T10:00:00Z in µs


def _upsert(pg_url: str, first_us: int, last_us: int, labels: dict[str, Any]) -> tuple[Any, ...]:
    """One window's upsert, committed; then (labels, first_seen µs, last_seen µs, xmin) of the row."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            tenant = ensure_tenant(cur, "writer", configured=("writer",))
            upsert_resources(cur, tenant, [SeenResource(URN, "svc", first_us, last_us, labels)])
            conn.commit()
            cur.execute("SELECT labels, (extract(epoch FROM first_seen) * 1e6)::bigint, "
                        "(extract(epoch FROM last_seen) * 1e6)::bigint, xmin::text "
                        "FROM dim_resource WHERE tenant_id = %s AND urn = %s", (tenant, URN))
            return cur.fetchone()
    finally:
        conn.close()


def test_resources_widen_newest_labels_win_and_a_repeat_rewrites_nothing(pg_url: str) -> None:
    labels, first, last, _ = _upsert(pg_url, T + 10 * MIN, T + 11 * MIN, {"version": "1", "zone": "a"})
    assert (labels, first, last) == ({"version": "1", "zone": "a"}, T + 10 * MIN, T + 11 * MIN)

    # a newer window: its labels win, the time range widens forward
    labels, first, last, _ = _upsert(pg_url, T + 20 * MIN, T + 21 * MIN, {"version": "2"})
    assert (labels, first, last) == ({"version": "2", "zone": "a"}, T + 10 * MIN, T + 21 * MIN)

    # an older window processed later (a backfill): it adds what was unknown, overrides nothing
    labels, first, last, xmin = _upsert(pg_url, T, T + MIN, {"version": "0", "pod": "p-7"})
    assert (labels, first, last) == ({"version": "2", "zone": "a", "pod": "p-7"}, T, T + 21 * MIN)

    # the same observation again: the row is not rewritten
    assert _upsert(pg_url, T, T + MIN, {"version": "0", "pod": "p-7"}) == (labels, first, last, xmin)
