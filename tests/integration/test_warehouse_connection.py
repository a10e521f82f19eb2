"""A postgres connection's libpq extras reach the real server: psycopg2 connects with the URL that
:func:`postgres_url` builds, and the session shows the connection's application_name and options."""

from __future__ import annotations

import json
from contextlib import closing
from urllib.parse import urlsplit

import psycopg2
import pytest

from airflow_obs_provider.hooks.warehouse import postgres_url

pytestmark = pytest.mark.integration


def test_the_url_of_a_connection_with_extras_opens_a_session_that_has_them(
        empty_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = urlsplit(empty_pg_url)
    monkeypatch.setenv("AIRFLOW_CONN_WH_EXTRAS", json.dumps({
        "conn_type": "postgres", "host": server.hostname, "port": server.port, "login": server.username,
        "password": server.password, "schema": server.path.lstrip("/"),
        # prefer: TLS when the server offers it; the root certificate is only read for verify-*
        "extra": {"sslmode": "prefer", "sslrootcert": "no-such-ca.pem", "application_name": "obs-etl-conn-test",
                  "options": "-c statement_timeout=4321"}}))
    with closing(psycopg2.connect(postgres_url("wh_extras"))) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('application_name'), current_setting('statement_timeout')")
        assert cur.fetchone() == ("obs-etl-conn-test", "4321ms")
