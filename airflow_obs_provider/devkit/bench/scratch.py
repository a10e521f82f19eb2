"""A throwaway database for benchmarks: created on the server, bootstrapped, always dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from psycopg2 import sql

from airflow_obs_provider.engine.bootstrap import bootstrap
from airflow_obs_provider.engine.db import connect, resolve_pg_url


@contextmanager
def scratch_database(pg_url: str | None, prefix: str, *, skip_extensions: tuple[str, ...] = ()) -> Iterator[str]:
    """Yield the URL of a fresh bootstrapped database on ``pg_url``'s server; drop it afterwards."""
    server = resolve_pg_url(pg_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    admin = connect(server, autocommit=True, application_name="obs-etl bench")
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            bootstrap(url, skip_extensions=skip_extensions)
            yield url
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
