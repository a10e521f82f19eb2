"""Airflow connections -> :class:`SourceSecrets` for the engine (values are never logged).

Shared by the operators and the ``obs_backfill`` DAG, which call the same job functions.
Each connection is looked up only when its id is given.
"""

from __future__ import annotations

from typing import Any

from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.hooks.warehouse import postgres_url


def source_secrets(
    *, aws_conn_id: str | None = None, oo_conn_id: str | None = None, file_list_conn_id: str | None = None
) -> SourceSecrets:
    values: dict[str, Any] = {}
    if aws_conn_id:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3")
        creds = hook.get_credentials()
        values.update(s3_access_key_id=creds.access_key, s3_secret_access_key=creds.secret_key,
                      s3_session_token=creds.token, s3_endpoint_url=hook.conn_config.endpoint_url,
                      s3_region=hook.conn_config.region_name)
    if oo_conn_id:
        from airflow_obs_provider.hooks.openobserve import OpenObserveHook

        api = OpenObserveHook(openobserve_conn_id=oo_conn_id).get_api_config()
        values.update(api_base_url=api["base_url"], api_user=api["user"], api_password=api["password"],
                      api_verify=api["verify"])  # a CA bundle path stays a path
    if file_list_conn_id:
        values["file_list_url"] = postgres_url(file_list_conn_id)
    return SourceSecrets(**values)
