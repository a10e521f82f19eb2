"""Exactly-once window writes (design §2).

Every (job, tenant, window) runs as ONE Postgres transaction that first takes an
advisory lock on that key, then lets the job replace the window's rows, then
marks the ``etl_job_run`` row ``success`` (or ``skipped``). A crash leaves
nothing partial; a concurrent duplicate waits for the lock and writes the same
rows. Attempts and failures are recorded on a separate connection so they stay
visible after the window transaction rolls back.

Aggregates outlive raw data (design §2), so a job may hand the ledger what it read per part
(``WindowTx.record_parts``, e.g. records per stream): the ledger keeps the counts of the last
successful run in ``details.last_success_records`` (kept through later failures) and refuses
to commit a rerun in which any part that had records now yields fewer than
:data:`SHRINK_FRACTION` of them, unless ``allow_shrink`` is set. Reruns that read the same or
more (late data) pass; a first run of a quiet window has nothing to compare and passes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg2.errors

from airflow_obs_provider.engine.db import connect, ensure_tenant, redact_url, require_schema
from airflow_obs_provider.engine.window import Window

log = logging.getLogger(__name__)

# Conflicts Postgres resolves by aborting one transaction: the window is simply run again.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.SerializationFailure,
)
TRANSIENT_ATTEMPTS = 3

# A rerun is refused when a part (a stream) that had records in the last successful run now has
# fewer than this fraction of them: "sharply less". Half, so data that is merely re-compacted or
# re-listed never trips it, while a source that lost its data (a wrong org, an emptied folder,
# OpenObserve's retention) always does.
SHRINK_FRACTION = 0.5
FORCE_HINT = ("if the raw data is really gone and the window should be rewritten from what is left, "
              "force it: obs-etl run ... --allow-shrink, the operator's allow_shrink=True, obs_backfill conf "
              "\"reprocess\": \"force\", or allow_shrink: true in the tenant's configuration")


class ShrinkRefused(RuntimeError):
    """A rerun would replace a window's rows from sharply fewer records than its last successful run."""


@dataclass(frozen=True)
class RunInfo:
    """Where a run came from (Airflow ids when present) for the ledger."""

    dag_id: str | None = None
    run_id: str | None = None
    try_number: int | None = None


@dataclass
class WindowTx:
    """What a job body gets inside the window transaction."""

    conn: Any
    cur: Any
    job: str
    tenant_code: str
    tenant_id: int
    window: Window
    rows_in: int = 0
    rows_out: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    skipped_reason: str | None = None
    # What the window read, per stream: the files and their rows in the range (engine.late_data),
    # so a later check for late-arriving records needs no re-read of data already counted.
    source_digest: dict[str, Any] | None = None
    # records read per part (e.g. "metrics/cpu": 1200): set by jobs whose rows must never be
    # replaced from a source that lost its data; None leaves the shrink guard out
    record_parts: dict[str, int] | None = None

    def skip(self, reason: str) -> None:
        """Record the window as ``skipped`` (e.g. older than the graph's applied state)."""
        self.skipped_reason = reason


@dataclass(frozen=True)
class WindowResult:
    job: str
    tenant_code: str
    window: Window
    status: str
    rows_in: int
    rows_out: int
    seconds: float
    details: dict[str, Any]


_UPSERT_RUNNING = """
INSERT INTO etl_job_run AS r (job, tenant_id, window_from, window_to, status, attempts, started_at,
                              finished_at, error, dag_id, run_id, try_number, updated_at)
VALUES (%(job)s, %(tenant_id)s, %(from)s, %(to)s, 'running', 1, now(), NULL, NULL,
        %(dag_id)s, %(run_id)s, %(try_number)s, now())
ON CONFLICT (job, tenant_id, window_from, window_to) DO UPDATE
SET status = 'running', finished_at = NULL, error = NULL,
    attempts = r.attempts + 1, started_at = now(), updated_at = now(),
    dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id, try_number = EXCLUDED.try_number
"""

_FINISH = """
UPDATE etl_job_run SET status = %(status)s, rows_in = %(rows_in)s, rows_out = %(rows_out)s,
       finished_at = now(), duration_ms = %(duration_ms)s, error = %(error)s,
       details = %(details)s::jsonb, updated_at = now(),
       source_digest = %(digest)s::jsonb
WHERE job = %(job)s AND tenant_id = %(tenant_id)s AND window_from = %(from)s AND window_to = %(to)s
"""


# A failure keeps what the last successful run read (the shrink guard compares against it); rows
# written by versions without last_success_records still have their rows_in.
_FAIL = """
UPDATE etl_job_run SET status = 'failed', rows_in = NULL, rows_out = NULL,
       finished_at = now(), duration_ms = %(duration_ms)s, error = %(error)s,
       details = CASE WHEN details ? 'last_success_records'
                        THEN jsonb_build_object('last_success_records', details->'last_success_records')
                      WHEN rows_in IS NOT NULL
                        THEN jsonb_build_object('last_success_records', jsonb_build_object('total', rows_in))
                      ELSE '{}'::jsonb END,
       updated_at = now()
WHERE job = %(job)s AND tenant_id = %(tenant_id)s AND window_from = %(from)s AND window_to = %(to)s
"""

_PREVIOUS_RECORDS = """
SELECT details->'last_success_records', rows_in FROM etl_job_run
WHERE job = %(job)s AND tenant_id = %(tenant_id)s AND window_from = %(from)s AND window_to = %(to)s
"""


def _stored_records(cur: Any, key: dict[str, Any]) -> tuple[Any, int | None]:
    """The window's row as stored: (``details.last_success_records``, ``rows_in``)."""
    cur.execute(_PREVIOUS_RECORDS, key)
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def previous_records(cur: Any, key: dict[str, Any]) -> dict[str, int] | None:
    """What the last successful run of this window read, per part (``{"total": n}`` for rows of
    older versions, which recorded only the sum); None when it never succeeded."""
    parts, rows_in = _stored_records(cur, key)
    if isinstance(parts, dict):
        return {str(k): int(v) for k, v in parts.items()}
    return {"total": int(rows_in)} if rows_in is not None else None


def shrunk_parts(previous: dict[str, int], current: dict[str, int]) -> list[tuple[str, int, int]]:
    """(part, before, now) for every part that had records and now has fewer than SHRINK_FRACTION of them."""
    if set(previous) == {"total"} and "total" not in current:
        current = {"total": sum(current.values())}
    return [(part, before, current.get(part, 0)) for part, before in sorted(previous.items())
            if before > 0 and current.get(part, 0) < before * SHRINK_FRACTION]


def check_shrink(job: str, tenant_code: str, window: Window, previous: dict[str, int] | None,
                 current: dict[str, int]) -> None:
    """Raise :class:`ShrinkRefused` naming the window and the counts when ``current`` shrank sharply."""
    if not previous:
        return
    shrunk = shrunk_parts(previous, current)
    if not shrunk:
        return
    listed = ", ".join(f"{part}: {before} -> {now}" for part, before, now in shrunk[:5])
    more = f" and {len(shrunk) - 5} more" if len(shrunk) > 5 else ""
    raise ShrinkRefused(
        f"{job} {tenant_code} window {window}: the source now yields {sum(current.values())} records where the "
        f"last successful run read {sum(previous.values())} (less than {SHRINK_FRACTION:.0%} of before in "
        f"{listed}{more}); the window's rows are left as they are. Check the source (org, path, bucket, "
        f"retention); {FORCE_HINT}")


def advisory_key(job: str, tenant_id: int, window: Window) -> str:
    return f"{job}|{tenant_id}|{window.start.isoformat()}|{window.end.isoformat()}"


def run_window(
    job: str,
    tenant_code: str,
    window: Window,
    body: Callable[[WindowTx], None],
    *,
    pg_url: str | None = None,
    run_info: RunInfo | None = None,
    configured_tenants: Collection[str] = (),
    allow_shrink: bool = False,
) -> WindowResult:
    """Run ``body`` inside the exactly-once window transaction and record the outcome.

    The tenant must exist in ``dim_tenant`` or be in ``configured_tenants`` (the caller's
    configuration) or be ``default``; any other code fails before a ledger row is written.
    ``allow_shrink`` lets a body that sets ``record_parts`` replace the window's rows from
    sharply fewer records than its last successful run (see :data:`SHRINK_FRACTION`).
    """
    info = run_info or RunInfo()
    t0 = time.monotonic()
    ctl = connect(pg_url, autocommit=True, application_name=f"obs-etl ledger {job}")
    try:
        with ctl.cursor() as cur:
            require_schema(cur)
            tenant_id = ensure_tenant(cur, tenant_code, configured=configured_tenants)
            key = {"job": job, "tenant_id": tenant_id, "from": window.start, "to": window.end}
            cur.execute(_UPSERT_RUNNING, {**key, "dag_id": info.dag_id, "run_id": info.run_id,
                                          "try_number": info.try_number})
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            conn = connect(pg_url, application_name=f"obs-etl {job}")
            try:
                cur = conn.cursor()
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                            (advisory_key(job, tenant_id, window),))
                tx = WindowTx(conn=conn, cur=cur, job=job, tenant_code=tenant_code, tenant_id=tenant_id,
                              window=window)
                body(tx)
                status = "skipped" if tx.skipped_reason else "success"
                guarded = tx.record_parts is not None and status == "success"
                if guarded:
                    previous = previous_records(cur, key)
                    if allow_shrink:  # recorded, so the ledger shows that a shrink was forced
                        tx.details["shrink_forced"] = bool(shrunk_parts(previous or {}, tx.record_parts or {}))
                    else:
                        check_shrink(job, tenant_code, window, previous, tx.record_parts or {})
                seconds = time.monotonic() - t0
                details = {**tx.details, **({"skipped_reason": tx.skipped_reason} if tx.skipped_reason else {})}
                if guarded:
                    details["last_success_records"] = tx.record_parts
                else:  # a skip (e.g. circuit open) must not make the guard forget the last success
                    kept, _ = _stored_records(cur, key)
                    if kept is not None:
                        details["last_success_records"] = kept
                if attempt > 1:
                    details["transient_retries"] = attempt - 1
                cur.execute(_FINISH, {**key, "status": status, "rows_in": tx.rows_in, "rows_out": tx.rows_out,
                                      "duration_ms": round(seconds * 1000, 3), "error": None,
                                      "details": json.dumps(details, default=str),
                                      "digest": None if tx.source_digest is None else json.dumps(tx.source_digest)})
                conn.commit()
                break
            except TRANSIENT_ERRORS as exc:
                # Two windows creating the same TimescaleDB chunk (or upserting the same
                # resources) can deadlock; the loser rolls back whole, so running it again is safe.
                _rollback_quietly(conn)
                if attempt == TRANSIENT_ATTEMPTS:
                    _record_failure(ctl, pg_url, key, exc, time.monotonic() - t0)
                    raise
                log.warning("%s %s %s: %s; retrying the window (attempt %d of %d)", job, tenant_code, window,
                            type(exc).__name__, attempt + 1, TRANSIENT_ATTEMPTS)
                time.sleep(0.2 * attempt)
            except BaseException as exc:
                _rollback_quietly(conn)
                _record_failure(ctl, pg_url, key, exc, time.monotonic() - t0)
                raise
            finally:
                conn.close()
    finally:
        ctl.close()
    return WindowResult(job, tenant_code, window, status, tx.rows_in, tx.rows_out, seconds, details)


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone (server restart): nothing was committed
        log.debug("rollback after failure did not complete", exc_info=True)


def _record_failure(ctl: Any, pg_url: str | None, key: dict[str, Any], exc: BaseException, seconds: float) -> None:
    """Mark the ledger row failed; if the server went away, try once on a fresh connection."""
    text = redact_url(f"{type(exc).__name__}: {exc}")[:4000]
    params = {**key, "duration_ms": round(seconds * 1000, 3), "error": text}
    for attempt in range(2):
        try:
            target = ctl if attempt == 0 else connect(pg_url, autocommit=True)
            with target.cursor() as cur:
                cur.execute(_FAIL, params)
            if attempt:
                target.close()
            return
        except Exception:
            log.debug("could not record the failure (attempt %d)", attempt + 1, exc_info=True)
    log.warning("the ledger could not record the failure of %s: the database is unreachable", key["job"])


_DONE_IN_ATTEMPT = """
SELECT r.window_to FROM etl_job_run r JOIN dim_tenant t ON t.id = r.tenant_id
WHERE r.job = %(job)s AND t.code = %(tenant)s AND r.status IN ('success', 'skipped')
  AND r.window_to = ANY(%(ends)s) AND r.dag_id = %(dag_id)s AND r.run_id = %(run_id)s
  AND r.try_number >= %(first_try)s
"""


def windows_done_in_attempt(job: str, tenant_code: str, windows: Collection[Window], run_info: RunInfo, *,
                            first_try: int, pg_url: str | None) -> set[Window]:
    """The ``windows`` this Airflow task attempt already finished (success or skipped), by their end.

    An attempt spans the automatic retries after a start or a clear: tries ``first_try`` up to the
    current one of the same DAG run. A retry skips those windows; a clear starts a new attempt and
    reruns them all. Matching on the end covers jobs whose ledger window is wider than the run's
    (age-refresh records its active window ending at T). Without Airflow ids nothing is skipped.
    """
    if not windows or run_info.dag_id is None or run_info.run_id is None:
        return set()
    conn = connect(pg_url, autocommit=True, application_name=f"obs-etl ledger {job}")
    try:
        with conn.cursor() as cur:
            require_schema(cur)
            cur.execute(_DONE_IN_ATTEMPT, {"job": job, "tenant": tenant_code, "ends": [w.end for w in windows],
                                           "dag_id": run_info.dag_id, "run_id": run_info.run_id,
                                           "first_try": first_try})
            ends = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    return {w for w in windows if w.end in ends}
