"""Postgres connections and the SQL files shipped with the package."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+:)[^@]*@")


class DatabaseError(RuntimeError):
    """A database could not be reached or refused us; the message never holds a password."""


def redact_url(url: str) -> str:
    """Hide the password of a connection URL so it can be logged."""
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def resolve_pg_url(pg_url: str | None = None) -> str:
    url = pg_url or os.environ.get("PG_URL")
    if not url:
        raise DatabaseError("no Postgres URL: pass --pg-url or set the PG_URL environment variable")
    return url


def connect(pg_url: str | None = None, *, autocommit: bool = False, application_name: str = "obs-etl") -> Any:
    """Open a psycopg2 connection (UTC session); errors name the server but never the password."""
    url = resolve_pg_url(pg_url)
    try:
        conn = psycopg2.connect(url, application_name=application_name, connect_timeout=15)
    except psycopg2.Error as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot connect to Postgres at {redact_url(url)}: {redact_url(msg)}") from None
    conn.autocommit = autocommit
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    if not autocommit:
        conn.commit()
    return conn


def sql_dir() -> Path:
    """The ``sql/`` folder: inside the installed wheel, or the repository's own in a checkout."""
    packaged = resources.files("airflow_obs_provider") / "sql"
    if packaged.is_dir() and (Path(str(packaged)) / "bootstrap.sql").exists():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parents[2] / "sql"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("the sql/ folder is neither in the package nor beside it")


def sql_text(name: str) -> str:
    return (sql_dir() / name).read_text()


# Tables every job touches before its own: without them the database was never bootstrapped.
_CORE_TABLES = ("dim_tenant", "etl_job_run")


def require_schema(cur: Any) -> None:
    """Fail with "run obs-etl bootstrap" (not a raw ``relation ... does not exist``) on a bare database."""
    cur.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NULL", (list(_CORE_TABLES),))
    missing = [r[0] for r in cur.fetchall()]
    if missing:
        raise DatabaseError(f"table(s) {', '.join(missing)} missing in database {cur.connection.info.dbname}: "
                            "this database was never bootstrapped; run obs-etl bootstrap --pg-url URL first")


def ensure_tenant(cur: Any, code: str, name: str | None = None) -> int:
    """Return ``dim_tenant.id`` for ``code``, creating the tenant on first use."""
    cur.execute(
        "INSERT INTO dim_tenant (code, name) VALUES (%s, %s) ON CONFLICT (code) DO NOTHING",
        (code, name or code),
    )
    cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (code,))
    return int(cur.fetchone()[0])


def has_extension(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,))
    return cur.fetchone() is not None
