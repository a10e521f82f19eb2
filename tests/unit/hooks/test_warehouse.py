"""Airflow postgres connections (AIRFLOW_CONN_* env vars, the real secrets backend) -> libpq URLs that keep
the connection's libpq extras (sslmode, sslrootcert, application_name...) and that psycopg2 accepts."""

from __future__ import annotations

import json

import psycopg2.extensions
import pytest

from airflow_obs_provider.hooks.warehouse import postgres_url

TLS_EXTRA = {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/certs/warehouse ca.pem",
             "application_name": "obs etl", "options": "-c statement_timeout=5000", "connect_timeout": 7,
             "cursor": "dictcursor", "iam": False}


def _dsn(url: str) -> dict[str, str]:
    return psycopg2.extensions.parse_dsn(url)


def test_a_json_connection_keeps_its_libpq_extras_and_drops_the_hooks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_TLS", json.dumps({
        "conn_type": "postgres", "host": "db.example.com", "port": 5433, "login": "etl@corp",
        "password": "p@ss:w/rd?", "schema": "obs warehouse", "extra": TLS_EXTRA}))
    assert _dsn(postgres_url("wh_tls")) == {
        "host": "db.example.com", "port": "5433", "user": "etl@corp", "password": "p@ss:w/rd?",
        "dbname": "obs warehouse", "sslmode": "verify-full", "sslrootcert": "/etc/ssl/certs/warehouse ca.pem",
        "application_name": "obs etl", "options": "-c statement_timeout=5000", "connect_timeout": "7"}


def test_a_uri_connection_keeps_its_query_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_URI",
                       "postgres://etl:secret@db.internal:5432/obs?sslmode=require&application_name=etl-uri")
    dsn = _dsn(postgres_url("wh_uri"))
    assert dsn["sslmode"] == "require" and dsn["application_name"] == "etl-uri"
    assert (dsn["host"], dsn["port"], dsn["user"], dsn["password"], dsn["dbname"]) == (
        "db.internal", "5432", "etl", "secret", "obs")


def test_a_connection_without_extras_or_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_MIN", json.dumps({"conn_type": "postgres", "host": "127.0.0.1",
                                                           "login": "postgres", "schema": "obs"}))
    assert postgres_url("wh_min") == "postgresql://postgres@127.0.0.1/obs"


def test_a_socket_directory_and_an_ipv6_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_SOCK", json.dumps({"conn_type": "postgres", "host": "/var/run/postgresql",
                                                            "login": "etl", "schema": "obs"}))
    monkeypatch.setenv("AIRFLOW_CONN_WH_V6", json.dumps({"conn_type": "postgres", "host": "::1", "port": 5432,
                                                          "login": "etl", "schema": "obs"}))
    assert _dsn(postgres_url("wh_sock"))["host"] == "/var/run/postgresql"
    assert _dsn(postgres_url("wh_v6"))["host"] == "::1"
