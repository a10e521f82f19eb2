"""Secret values are scrubbed from third-party error texts before they reach a message."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.secrets import SourceSecrets


def test_scrub_replaces_every_secret_value_and_keeps_the_rest() -> None:
    secrets = SourceSecrets(s3_access_key_id="AKIAPUBLICID", s3_secret_access_key="s3-secret-value",
                            s3_session_token="session-token-value", api_password="api-pw")
    text = "denied: key AKIAPUBLICID sig s3-secret-value token session-token-value pw api-pw twice api-pw"
    assert secrets.scrub(text) == "denied: key AKIAPUBLICID sig *** token *** pw *** twice ***"


def test_scrub_without_secrets_leaves_the_text_alone() -> None:
    assert SourceSecrets().scrub("plain error") == "plain error"


def test_scrub_also_masks_credentials_it_was_not_told_about() -> None:
    text = "cannot open postgresql://app:p@ss/x@db:5432/oo and host=db password=libpq-pw"
    scrubbed = SourceSecrets(api_password="p@ss/x").scrub(text)
    assert "p@ss" not in scrubbed and "libpq-pw" not in scrubbed


@pytest.mark.parametrize("base_url", ["https://etl:Pw1@oo.example.com/prefix", "https://etl:P/w1@oo.example.com/prefix",
                                      "https://:P@w1@oo.example.com/prefix"])
def test_an_api_url_with_a_password_is_shown_and_linked_without_it(base_url: str) -> None:
    from airflow_obs_provider.engine.oo.api import ApiSource

    src = ApiSource("default", base_url, "etl@example.com", "token")
    assert src.ui_base_url == "https://oo.example.com/prefix"  # oo_locator.ui_url links are stored
    assert "w1" not in src.shown_url and "w1" not in repr(src)
    assert src.base_url == base_url  # requests still get what was configured
