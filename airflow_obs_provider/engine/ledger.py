"""Exactly-once window writes (design §2).

Every (job, tenant, window) runs as ONE Postgres transaction that first takes an
advisory lock on that key, then lets the job replace the window's rows, then
marks the ``etl_job_run`` row ``success`` (or ``skipped``). A crash leaves
nothing partial; a concurrent duplicate waits for the lock and writes the same
rows. Attempts and failures are recorded on a separate connection so they stay
visible after the window transaction rolls back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg2.errors

from airflow_obs_provider.engine.db import connect, ensure_tenant, redact_url
from airflow_obs_provider.engine.window import Window

log = logging.getLogger(__name__)

# Conflicts Postgres resolves by aborting one transaction: the window is simply run again.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.SerializationFailure,
)
TRANSIENT_ATTEMPTS = 3


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
       source_digest = CASE WHEN %(status)s = 'failed' THEN source_digest ELSE %(digest)s::jsonb END
WHERE job = %(job)s AND tenant_id = %(tenant_id)s AND window_from = %(from)s AND window_to = %(to)s
"""


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
) -> WindowResult:
    """Run ``body`` inside the exactly-once window transaction and record the outcome.

    The tenant must exist in ``dim_tenant`` or be in ``configured_tenants`` (the caller's
    configuration) or be ``default``; any other code fails before a ledger row is written.
    """
    info = run_info or RunInfo()
    t0 = time.monotonic()
    ctl = connect(pg_url, autocommit=True, application_name=f"obs-etl ledger {job}")
    try:
        with ctl.cursor() as cur:
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
                seconds = time.monotonic() - t0
                details = {**tx.details, **({"skipped_reason": tx.skipped_reason} if tx.skipped_reason else {})}
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
    params = {**key, "status": "failed", "rows_in": None, "rows_out": None,
              "duration_ms": round(seconds * 1000, 3), "error": text, "details": "{}", "digest": None}
    for attempt in range(2):
        try:
            target = ctl if attempt == 0 else connect(pg_url, autocommit=True)
            with target.cursor() as cur:
                cur.execute(_FINISH, params)
            if attempt:
                target.close()
            return
        except Exception:
            log.debug("could not record the failure (attempt %d)", attempt + 1, exc_info=True)
    log.warning("the ledger could not record the failure of %s: the database is unreachable", key["job"])
