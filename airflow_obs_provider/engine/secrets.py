"""Credentials and endpoints of the sources a job reads (OpenObserve buckets and API, S3 states),
and the scrubbing of third-party error texts that might echo them.

A neutral module: the OpenObserve readers and the topology readers both take a
:class:`SourceSecrets`, and neither needs the other to get one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from airflow_obs_provider.engine.masking import mask_text
from airflow_obs_provider.engine.tls import parse_verify


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class SourceSecrets:
    """Credentials and endpoints: from env vars (CLI) or Airflow connections (operators), never YAML."""

    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_session_token: str | None = field(default=None, repr=False)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    api_base_url: str | None = None
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)
    api_verify: bool | str = True  # False, True, or a CA bundle path (a private CA's OpenObserve)
    file_list_url: str | None = field(default=None, repr=False)  # OO's metadata DB holding file_list

    @classmethod
    def from_env(cls) -> SourceSecrets:
        return cls(
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
            s3_session_token=_env("S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            s3_region=_env("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
            api_base_url=_env("OO_API_URL"),
            api_user=_env("OO_API_USER"),
            api_password=_env("OO_API_PASSWORD"),
            api_verify=parse_verify(_env("OO_API_VERIFY")),
            file_list_url=_env("OO_FILE_LIST_URL"),
        )

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in a message (used to scrub third-party error texts)."""
        return tuple(v for v in (self.s3_secret_access_key, self.s3_session_token, self.api_password) if v)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secret_values())


def scrub(text: str, secret_values: Iterable[str]) -> str:
    """``text`` (a third-party error message) with every known secret value replaced by ``***``, and
    whatever else looks like a credential (a URL's password, ``password=...``) masked by :func:`~airflow_obs_provider.engine.db.redact_url`."""
    for secret in secret_values:
        text = text.replace(secret, "***")
    return mask_text(text)
