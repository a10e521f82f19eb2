"""OpenObserveHook: Airflow connections (from AIRFLOW_CONN_* env vars, the real secrets backend) -> API config."""

from __future__ import annotations

import json

import pytest

from airflow_obs_provider.engine.tls import parse_verify
from airflow_obs_provider.hooks.openobserve import OpenObserveHook, build_base_url


def _conn_env(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "openobserve", **fields}))


def test_api_config_from_a_json_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn_env(monkeypatch, "oo_prod", host="oo.example.com", port=5080, schema="https", login="etl@example.com",
              password="s3cr3t-token", extra={"org": "acme", "verify_ssl": False})
    cfg = OpenObserveHook("oo_prod").get_api_config()
    assert cfg == {"base_url": "https://oo.example.com:5080", "org": "acme", "user": "etl@example.com",
                   "password": "s3cr3t-token", "verify": False}


def test_defaults_org_and_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn_env(monkeypatch, "oo_min", host="oo.internal", login="u@example.com", password="t")
    cfg = OpenObserveHook("oo_min").get_api_config()
    assert cfg["base_url"] == "http://oo.internal" and cfg["org"] == "default" and cfg["verify"] is True


def test_legacy_verify_key_and_uri_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OO_URI", "openobserve://u%40example.com:tok@oo.example.com:443/https?org=x&verify=false")
    cfg = OpenObserveHook("oo_uri").get_api_config()
    assert cfg["base_url"] == "https://oo.example.com:443"
    assert (cfg["user"], cfg["password"], cfg["org"], cfg["verify"]) == ("u@example.com", "tok", "x", False)


@pytest.mark.parametrize(("host", "port", "scheme", "expected"), [
    ("oo.example.com", 5080, "https", "https://oo.example.com:5080"),
    ("https://oo.example.com/observe/", None, None, "https://oo.example.com/observe"),
    ("http://oo.example.com:8080", 9999, "https", "http://oo.example.com:8080"),
    ("oo", None, None, "http://oo"),
])
def test_build_base_url(host: str, port: int | None, scheme: str | None, expected: str) -> None:
    assert build_base_url(host, port, scheme) == expected


def test_build_base_url_rejects_missing_host_and_other_schemes() -> None:
    with pytest.raises(ValueError, match="no host"):
        build_base_url(None, None, None)
    with pytest.raises(ValueError, match="http or https"):
        build_base_url("oo.example.com", None, "ftp")


@pytest.mark.parametrize(("value", "expected"), [
    (None, True), (True, True), (False, False), ("false", False), ("No", False), ("1", True), ("", True),
    ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem"),
])
def test_parse_verify(value: object, expected: bool | str) -> None:
    assert parse_verify(value) == expected


def test_ui_behaviour_matches_the_declarative_provider_info() -> None:
    from airflow_obs_provider.get_provider_info import get_provider_info

    conn = get_provider_info()["connection-types"][0]
    behaviour = OpenObserveHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == conn["ui-field-behaviour"]["relabeling"]
    assert set(conn["ui-field-behaviour"]["placeholders"]) <= set(behaviour["placeholders"])
    # get_connection_form_widgets needs Flask-AppBuilder: checked in the Airflow 2.11 discovery test.
