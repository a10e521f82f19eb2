"""Airflow ``postgres`` connections -> libpq URLs for the engine (which opens its own connections).

The URL is built from the connection itself, the way :meth:`PostgresHook.get_conn` builds its
connection arguments: host, port, login, password, schema (the database) and every extra that is a
libpq parameter (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``, ``application_name``,
``options``, ``connect_timeout``, ``target_session_attrs``...). ``PostgresHook.get_uri`` renders a
SQLAlchemy URL and drops those extras, so a warehouse that demands TLS would be reached without it.
The URL may hold a password: never log it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

# Extras of a postgres connection that configure Airflow's hook, not libpq (PostgresHook's
# ``ignored_extra_options`` plus ``cursor``, which the hook turns into a cursor factory).
_HOOK_ONLY_EXTRAS = frozenset({
    "iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier", "workgroup-name", "aws_conn_id",
    "sqlalchemy_scheme", "sqlalchemy_query", "azure_conn_id", "enable_log_db_messages",
})


def libpq_url(*, host: str | None, port: int | None, login: str | None, password: str | None,
              database: str | None, extra: Mapping[str, Any]) -> str:
    """A ``postgresql://`` URL (RFC 3986, percent-encoded as libpq decodes it) for these fields."""
    userinfo = ""
    if login:
        userinfo = quote(login, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    params = {key: _param(value) for key, value in extra.items()
              if key not in _HOOK_ONLY_EXTRAS and value is not None}
    netloc = ""
    if host and host.startswith("/"):
        params.setdefault("host", host)  # a Unix socket directory travels as a parameter
    elif host:
        netloc = f"[{host}]" if ":" in host and not host.startswith("[") else quote(host, safe="[]")
    if port:
        netloc += f":{int(port)}"
    url = f"postgresql://{userinfo}{netloc}/{quote(database or '', safe='')}"
    if params:
        # quote (not urlencode's default quote_plus): libpq decodes %XX only, a "+" would stay a "+"
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items()))
    return url


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"  # libpq's spelling for its boolean-ish parameters (keepalives)
    return str(value)


def postgres_url(postgres_conn_id: str) -> str:
    """The libpq URL of an Airflow ``postgres`` connection, with its libpq extras kept."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    conn = hook.connection
    return libpq_url(host=conn.host, port=conn.port, login=conn.login, password=conn.password,
                     database=hook.database or conn.schema, extra=conn.extra_dejson)
