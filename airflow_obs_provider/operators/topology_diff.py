"""TopologyDiffOperator: record one observation of a tenant's Terraform or Ansible topology."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_obs_provider.engine.job_names import TOPOLOGY_JOB_BY_SOURCE
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    counting_failures,
    emit_window_stats,
    load_etl_config,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID
from airflow_obs_provider.version_compat import BaseOperator

if TYPE_CHECKING:
    from airflow_obs_provider.engine.config import EtlConfig
    from airflow_obs_provider.engine.secrets import SourceSecrets



class TopologyDiffOperator(BaseOperator):
    """Observe ``tenant``'s ``source`` at the run's ``data_interval_end`` and record what changed.

    New edges open an interval in ``topo_edge_time``, vanished ones are closed at that
    time, unchanged ones are left alone; an observation older than the latest one of
    the source is recorded as skipped. Sources are configured per tenant in the ETL
    YAML (``terraform:`` / ``ansible:``).

    :param source: ``terraform`` or ``ansible``
    :param tenant: ``dim_tenant.code`` (a tenant of the configuration)
    :param config_path: the ETL YAML (default: ``OBS_ETL_CONFIG``, else ``config_variable``)
    :param config_variable: Airflow Variable holding the ETL YAML
    :param postgres_conn_id: Airflow connection of the warehouse database
    :param aws_conn_id: Amazon connection for ``s3://`` state files (only read when a state is on S3)
    """

    template_fields: Sequence[str] = ("tenant", "config_path")
    ui_color = "#e8f0d8"

    def __init__(
        self,
        *,
        source: str,
        tenant: str,
        config_path: str | None = None,
        config_variable: str | None = None,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if source not in TOPOLOGY_JOB_BY_SOURCE:
            raise ValueError(f"source must be one of {sorted(TOPOLOGY_JOB_BY_SOURCE)}, got {source!r}")
        self.source = source
        self.tenant = tenant
        self.config_path = config_path
        self.config_variable = config_variable
        self.postgres_conn_id = postgres_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_obs_provider.jobs.topology import describe, run

        job = TOPOLOGY_JOB_BY_SOURCE[self.source]
        at = window_from_context(context).end
        with counting_failures(job, self.tenant):
            config = load_etl_config(self.config_path, self.config_variable)
            result = run(config, self.tenant, self.source, at, pg_url=postgres_url(self.postgres_conn_id),
                         secrets=self._secrets(config), run_info=run_info_from_context(context))
        self.log.info("%s", describe(result))
        emit_window_stats(job, self.tenant, result)
        d = result.details
        return {"status": result.status, "observed_at": at.isoformat(), "nodes": d.get("nodes", 0),
                "edges": d.get("edges", 0), "opened": d.get("opened", 0), "closed": d.get("closed", 0)}

    def _secrets(self, config: EtlConfig) -> SourceSecrets | None:
        """S3 credentials from the Amazon connection, resolved only when a state file is on S3."""
        if self.source != "terraform" or not self.aws_conn_id:
            return None
        from airflow_obs_provider.engine.topology.terraform import uses_s3

        if not uses_s3(config.tenant(self.tenant).terraform):
            return None
        from airflow_obs_provider.hooks.source_secrets import source_secrets

        return source_secrets(aws_conn_id=self.aws_conn_id)
