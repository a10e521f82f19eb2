"""Postgres connections and the SQL files shipped with the package."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from airflow_obs_provider.engine.masking import mask_text

_QUOTED = re.compile(r'"([^"]*)"')


class DatabaseError(RuntimeError):
    """A database could not be reached or refused us; the message never holds a password."""


def redact_url(text: str) -> str:
    """``text`` safe to print, log or store: a URL, a libpq connection string or any message holding one,
    with its credentials masked (``postgresql://u:<SECRET>@h/db``, ``?password=<SECRET>``,
    ``host=h password=<SECRET>``) by the product's one set of secret rules (:mod:`masking`). Every
    error path (the ledger's ``error`` column, stderr, log lines) goes through here."""
    return mask_text(text)


def _hidden_parts(text: str) -> list[str]:
    """The pieces of ``text`` that :func:`redact_url` replaces (its secrets)."""
    masked = redact_url(text)
    ops = difflib.SequenceMatcher(None, text, masked, autojunk=False).get_opcodes()
    return [text[i1:i2] for tag, i1, i2, _, _ in ops if tag in ("replace", "delete") and i2 > i1]


def redact_echo(message: str, source: str) -> str:
    """A library's error ``message`` about ``source`` (a connection URL) made safe: libpq quotes what
    it could not use, and reads a URL its own way (``u:p@ss@h`` gives host ``"ss@h"``), so a quoted
    fragment that shares two characters with a secret of ``source`` is hidden too."""
    secrets = _hidden_parts(source)

    def hide(m: re.Match[str]) -> str:
        fragment = m.group(1)
        for secret in secrets:
            match = difflib.SequenceMatcher(None, fragment, secret, autojunk=False).find_longest_match()
            if match.size >= min(2, len(secret)):
                return '"<SECRET>"'
        return m.group(0)

    return redact_url(_QUOTED.sub(hide, message) if secrets else message)


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
        raise DatabaseError(f"cannot connect to Postgres at {redact_url(url)}: {redact_echo(msg, url)}") from None
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


DEFAULT_TENANT = "default"


class UnknownTenantError(ValueError):
    """A tenant code that is neither in ``dim_tenant`` nor configured: it is never created."""


def ensure_tenant(cur: Any, code: str, name: str | None = None, *, configured: Collection[str] = ()) -> int:
    """Return ``dim_tenant.id`` for ``code``; create it only if it is ``default`` or in ``configured``.

    This is the one place tenants are created. ``configured`` holds the tenant codes of
    the caller's ETL configuration (empty when it has none): a typo such as ``--tenant
    nosuch`` must fail, not create a tenant, its ledger rows and graph state.
    """
    cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (code,))
    row = cur.fetchone()
    if row is not None:
        return int(row[0])
    if code != DEFAULT_TENANT and code not in configured:
        cur.execute("SELECT code FROM dim_tenant ORDER BY code")
        existing = [r[0] for r in cur.fetchall()]
        where = (f"the configuration lists {sorted(configured)}" if configured
                 else "no configuration was given (pass --config with the ETL YAML that lists it)")
        raise UnknownTenantError(f"unknown tenant {code!r}: it is not in dim_tenant {existing} and {where}; "
                                 "only configured tenants (and 'default') are created")
    cur.execute(
        "INSERT INTO dim_tenant (code, name) VALUES (%s, %s) ON CONFLICT (code) DO NOTHING",
        (code, name or code),
    )
    cur.execute("SELECT id FROM dim_tenant WHERE code = %s", (code,))
    return int(cur.fetchone()[0])


def has_extension(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,))
    return cur.fetchone() is not None
