"""Secret values are scrubbed from third-party error texts before they reach a message."""

from __future__ import annotations

from airflow_obs_provider.engine.oo.source import SourceSecrets


def test_scrub_replaces_every_secret_value_and_keeps_the_rest() -> None:
    secrets = SourceSecrets(s3_access_key_id="AKIAPUBLICID", s3_secret_access_key="s3-secret-value",
                            s3_session_token="session-token-value", api_password="api-pw")
    text = "denied: key AKIAPUBLICID sig s3-secret-value token session-token-value pw api-pw twice api-pw"
    assert secrets.scrub(text) == "denied: key AKIAPUBLICID sig *** token *** pw *** twice ***"


def test_scrub_without_secrets_leaves_the_text_alone() -> None:
    assert SourceSecrets().scrub("plain error") == "plain error"
