"""Airflow connection type ``openobserve``: where the OpenObserve HTTP API is and how to log in.

The hook only holds the connection; the engine's API reader gets a plain dict
(:meth:`OpenObserveHook.get_api_config`) so it never imports Airflow.

Connection fields: host (a name, or a URL with scheme and optional path prefix),
port, schema = ``http`` or ``https``, login = service-account e-mail,
password = token; extra: ``org`` (default ``default``) and ``verify_ssl``
(true/false, or the path of a CA bundle).
"""

from __future__ import annotations

from typing import Any

from airflow_obs_provider.engine.tls import parse_verify
from airflow_obs_provider.get_provider_info import (
    OPENOBSERVE_CONN_FIELDS,
    OPENOBSERVE_DEFAULT_ORG,
    OPENOBSERVE_UI_FIELD_BEHAVIOUR,
)
from airflow_obs_provider.version_compat import BaseHook

__all__ = ["OpenObserveHook", "build_base_url"]


def build_base_url(host: str | None, port: int | None, scheme: str | None) -> str:
    """``scheme://host[:port][/prefix]`` from the connection's host, port and schema fields."""
    if not host:
        raise ValueError("the OpenObserve connection has no host")
    host = host.strip().rstrip("/")
    if "://" in host:
        scheme_part, rest = host.split("://", 1)
    else:
        scheme_part, rest = (scheme or "http").strip().lower(), host
    if scheme_part not in ("http", "https"):
        raise ValueError(f"the OpenObserve connection's scheme must be http or https, not {scheme_part!r}")
    netloc, _, path = rest.partition("/")
    if port and ":" not in netloc:
        netloc = f"{netloc}:{port}"
    return f"{scheme_part}://{netloc}" + (f"/{path}" if path else "")


class OpenObserveHook(BaseHook):
    """Holds an OpenObserve connection (no I/O except :meth:`test_connection`)."""

    conn_name_attr = "openobserve_conn_id"
    default_conn_name = "openobserve_default"
    conn_type = "openobserve"
    hook_name = "OpenObserve"

    def __init__(self, openobserve_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.openobserve_conn_id = openobserve_conn_id

    def get_api_config(self) -> dict[str, Any]:
        """``{base_url, org, user, password, verify}`` for the engine's API reader. Never log it."""
        conn = self.get_connection(self.openobserve_conn_id)
        extra = conn.extra_dejson or {}
        return {
            "base_url": build_base_url(conn.host, conn.port, conn.schema),
            "org": str(extra.get("org") or OPENOBSERVE_DEFAULT_ORG),
            "user": conn.login,
            "password": conn.password,
            # "verify" is accepted too: connections written before the field had its final name.
            "verify": parse_verify(extra.get("verify_ssl", extra.get("verify"))),
        }

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: an authenticated call to the org's stream list."""
        import requests

        cfg = self.get_api_config()
        try:
            resp = requests.get(f"{cfg['base_url']}/api/{cfg['org']}/streams", auth=(cfg["user"], cfg["password"]),
                                verify=cfg["verify"], timeout=15)
        except requests.RequestException as exc:
            return False, f"cannot reach {cfg['base_url']}: {type(exc).__name__}"
        if resp.status_code == 200:
            return True, f"connected to OpenObserve org {cfg['org']}"
        return False, f"OpenObserve answered HTTP {resp.status_code}"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form fields for Airflow < 3.2, built from the declarative ``conn-fields`` in provider info."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, StringField

        widgets: dict[str, Any] = {}
        for name, spec in OPENOBSERVE_CONN_FIELDS.items():
            default = spec["schema"].get("default")
            if "boolean" in spec["schema"]["type"]:
                widgets[name] = BooleanField(lazy_gettext(spec["label"]), default=default,
                                             description=spec["description"])
            else:
                widgets[name] = StringField(lazy_gettext(spec["label"]), widget=BS3TextFieldWidget(),
                                            default=default, description=spec["description"])
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow < 3.2 spelling of the declarative ``ui-field-behaviour``."""
        behaviour = OPENOBSERVE_UI_FIELD_BEHAVIOUR
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": {**behaviour["placeholders"], "org": OPENOBSERVE_DEFAULT_ORG},
        }
