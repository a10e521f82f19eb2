"""Keep the active service-call graph (AGE graph ``obs_graph``) equal to the last 10 minutes of calls.

For a tenant and a window end T the graph holds exactly the edges of the
complete ``service_call_5m`` buckets inside ``[T - active_window, T)``:
``(:Resource {urn, tenant_id})-[:CALLS {tenant_id, calls, rps, err_rate, p95, last_seen}]->(:Resource)``.
How the props combine buckets is documented beside the SQL (``sql/age_refresh.sql``,
section ``active_edges``).

The refresh is set-based SQL on AGE's label tables (see the header of the SQL
file for why not Cypher MERGE) and runs inside the ledger's window
transaction, so it is all-or-nothing. The relational table ``active_call_edge``
holds the same edges in every mode; without AGE it is the whole feature.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from airflow_obs_provider.engine.bootstrap import GRAPH_NAME, age_graph_ready
from airflow_obs_provider.engine.db import has_extension, sql_text
from airflow_obs_provider.engine.job_names import AGE_REFRESH
from airflow_obs_provider.engine.ledger import WindowTx
from airflow_obs_provider.engine.window import Window, WindowError, floor_time, future_horizon

log = logging.getLogger(__name__)

JOB = AGE_REFRESH
BUCKET = timedelta(minutes=5)  # service_call_5m's bucket width
DEFAULT_ACTIVE_WINDOW = timedelta(minutes=10)
SQL_FILE = "age_refresh.sql"

_SECTION_RE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def sql_sections(text: str | None = None) -> dict[str, str]:
    """The named statements of ``sql/age_refresh.sql`` (a ``-- name: X`` line opens section X)."""
    source = sql_text(SQL_FILE) if text is None else text
    marks = list(_SECTION_RE.finditer(source))
    if not marks:
        raise ValueError(f"{SQL_FILE} holds no '-- name:' sections")
    sections: dict[str, str] = {}
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        name = mark.group(1)
        if name in sections:
            raise ValueError(f"{SQL_FILE}: section {name!r} appears twice")
        sections[name] = source[mark.end():nxt.start() if nxt else len(source)].strip()
    return sections


def active_window_ending(at: datetime, length: timedelta = DEFAULT_ACTIVE_WINDOW) -> Window:
    """The ledger window of a refresh at T: ``[T - length, T)``; ``length`` is whole 5-minute buckets."""
    if length < BUCKET or length % BUCKET:
        raise WindowError(f"the active window must be a positive multiple of 5 minutes, not {length}")
    return Window(at - length, at)


def covered_seconds(window: Window) -> float:
    """Seconds of the complete 5-minute buckets inside ``window`` (the rps denominator).

    600 for a 10-minute window ending on a 5-minute boundary; 300 when T is off
    the grid, because only one complete bucket then fits.
    """
    first = floor_time(window.start, BUCKET)
    if first < window.start:
        first += BUCKET
    last = floor_time(window.end, BUCKET)
    if last <= first:
        raise WindowError(f"window {window} holds no complete 5-minute bucket of service_call_5m")
    return (last - first).total_seconds()


@dataclass(frozen=True)
class RefreshCounts:
    """What one refresh changed in the graph (zeros in relational mode)."""

    vertices_created: int = 0
    vertices_deleted: int = 0
    edges_created: int = 0
    edges_updated: int = 0
    edges_deleted: int = 0


def age_unavailable_reason(cur: Any) -> str | None:
    """Why the AGE graph cannot be used here, or None when it can."""
    if not has_extension(cur, "age"):
        return "the Apache AGE extension is not installed in this database"
    if not age_graph_ready(cur):
        return (f"graph {GRAPH_NAME} with labels Resource and CALLS is missing, or this role may not read "
                "AGE's catalog (run obs-etl bootstrap as the database owner)")
    return None


def prepare_age_session(cur: Any) -> None:
    """``LOAD 'age'`` and ag_catalog on the search_path, for this transaction only.

    LOAD needs superuser unless the library sits in ``$libdir/plugins``; where it
    is refused, ``shared_preload_libraries`` has loaded AGE already (or the first
    AGE call will fail with a clear message). ag_catalog goes LAST on the path so
    unqualified names keep resolving to the project's own schema.
    """
    cur.execute("SAVEPOINT obs_load_age")
    try:
        cur.execute("LOAD 'age'")
    except Exception as exc:  # psycopg2.Error; the savepoint keeps the transaction usable
        cur.execute("ROLLBACK TO SAVEPOINT obs_load_age")
        log.debug("LOAD 'age' refused (%s); relying on shared_preload_libraries", exc)
    cur.execute("RELEASE SAVEPOINT obs_load_age")
    cur.execute("SELECT set_config('search_path', current_setting('search_path') || ', ag_catalog', true)")


def require_refresh_schema(cur: Any) -> None:
    """The refresh state and relational tables come from ``obs-etl bootstrap``; say so when missing."""
    cur.execute(sql_sections()["schema_present"])
    if not cur.fetchone()[0]:
        raise RuntimeError("age_refresh_state / active_call_edge are missing: run `obs-etl bootstrap` "
                           "(sql/bootstrap.sql) on this database first")


def refresh_params(tenant_id: int, window: Window) -> dict[str, Any]:
    """The parameters the refresh statements share (AGE props hold the tenant id as text, hence tenant_key)."""
    return {"tenant_id": tenant_id, "tenant_key": str(tenant_id), "window_from": window.start,
            "window_to": window.end, "covered_seconds": covered_seconds(window)}


def refresh_active_graph(tx: WindowTx) -> None:
    """Ledger body: make the graph and ``active_call_edge`` hold exactly the window's active edges."""
    cur, q = tx.cur, sql_sections()
    window = tx.window
    age_missing = age_unavailable_reason(cur)
    with_age = age_missing is None
    if with_age:
        prepare_age_session(cur)
    require_refresh_schema(cur)

    params = refresh_params(tx.tenant_id, window)
    cur.execute(q["lock_tenant"], params)
    cur.execute(q["applied_at"], params)
    row = cur.fetchone()
    applied_at: datetime | None = row[0] if row else None
    if applied_at is not None and applied_at > future_horizon():
        # written by a version that accepted any --at: no refresh can have happened there, and
        # honouring it would block every real refresh until that date
        tx.details["ignored_future_applied_at"] = applied_at.isoformat()
        applied_at = None
    tx.details.update({"graph_mode": "age" if with_age else "relational", "active_from": window.start.isoformat(),
                       "active_to": window.end.isoformat(), "covered_seconds": params["covered_seconds"],
                       "previously_applied_at": applied_at.isoformat() if applied_at else None})
    if age_missing:
        tx.details["age_unavailable"] = age_missing
    if applied_at is not None and window.end < applied_at:
        tx.skip(f"the graph already shows T={applied_at.isoformat()}, newer than T={window.end.isoformat()}: "
                "an older window never moves the graph back in time")
        return

    cur.execute(q["plan_bulk"])
    enable_nestloop = cur.fetchone()[0]
    cur.execute(q["relational_sync"], params)
    edges, bucket_rows, relational_deleted = (int(v) for v in cur.fetchone())
    counts = _sync_graph(cur, params) if with_age else RefreshCounts()
    cur.execute(q["plan_restore"], {"enable_nestloop": enable_nestloop})
    cur.execute(q["record_state"], {**params, "graph_mode": tx.details["graph_mode"], "edges": edges})

    tx.rows_in = bucket_rows
    tx.rows_out = edges
    tx.details.update({"edges": edges, "relational_deleted": relational_deleted, **vars(counts)})


def _sync_graph(cur: Any, params: dict[str, Any]) -> RefreshCounts:
    """Merge vertices, update kept edges in place, insert new ones, remove the rest (same transaction)."""
    q = sql_sections()
    cur.execute(q["graph_insert_vertices"], params)
    vertices_created = cur.rowcount
    cur.execute(q["graph_sync_edges"], params)
    edges_created, edges_updated, edges_deleted = (int(v) for v in cur.fetchone())
    cur.execute(q["graph_delete_vertices"], params)
    return RefreshCounts(vertices_created=vertices_created, vertices_deleted=cur.rowcount,
                         edges_created=edges_created, edges_updated=edges_updated, edges_deleted=edges_deleted)
