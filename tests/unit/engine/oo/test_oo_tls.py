"""TLS verification settings reach the API reader as given: False, True, or a CA bundle path."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.tls import parse_verify


@pytest.mark.parametrize("value, expected", [
    (None, True), ("", True), ("yes", True), (True, True), ("off", False), ("FALSE", False), (False, False),
    ("ca/private-ca.pem", "ca/private-ca.pem"),
])
def test_parse_verify(value: object, expected: bool | str) -> None:
    assert parse_verify(value) == expected


@pytest.mark.parametrize("value, expected", [("false", False), ("ca/bundle.pem", "ca/bundle.pem"), (None, True)])
def test_oo_api_verify_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                            expected: bool | str) -> None:
    if value is None:
        monkeypatch.delenv("OO_API_VERIFY", raising=False)
    else:
        monkeypatch.setenv("OO_API_VERIFY", value)
    assert SourceSecrets.from_env().api_verify == expected
