"""TopologyDiffOperator: record one observation of a tenant's Terraform or Ansible topology."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_obs_provider.engine.job_names import TOPOLOGY_JOB_BY_SOURCE
from airflow_obs_provider.engine.ledger import WindowResult
from airflow_obs_provider.engine.window import Window
from airflow_obs_provider.operators.windowed import ConfiguredJobOperator
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID


class TopologyDiffOperator(ConfiguredJobOperator):
    """Observe ``tenant``'s ``source`` at the run's ``data_interval_end`` and record what changed.

    New edges open an interval in ``topo_edge_time``, vanished ones are closed at that
    time, unchanged ones are left alone; an observation older than the latest one of
    the source is recorded as skipped. Sources are configured per tenant in the ETL
    YAML (``terraform:`` / ``ansible:``).

    :param source: ``terraform`` or ``ansible``
    :param tenant: ``dim_tenant.code`` (a tenant of the configuration)
    :param tenants: several tenant codes, observed one after another
    :param config_path: the ETL YAML (default: ``OBS_ETL_CONFIG``, else ``config_variable``)
    :param config_variable: Airflow Variable holding the ETL YAML
    :param postgres_conn_id: Airflow connection of the warehouse database
    :param aws_conn_id: Amazon connection for ``s3://`` state files (only read when a state is on S3)
    """

    template_fields: Sequence[str] = ("tenants", "config_path")
    ui_color = "#e8f0d8"

    def __init__(
        self,
        *,
        source: str,
        tenant: str | None = None,
        tenants: Sequence[str] | None = None,
        config_path: str | None = None,
        config_variable: str | None = None,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        if source not in TOPOLOGY_JOB_BY_SOURCE:
            raise ValueError(f"source must be one of {sorted(TOPOLOGY_JOB_BY_SOURCE)}, got {source!r}")
        super().__init__(tenant=tenant, tenants=tenants, config_path=config_path, config_variable=config_variable,
                         postgres_conn_id=postgres_conn_id, **kwargs)
        self.source = source
        self.job_name = TOPOLOGY_JOB_BY_SOURCE[source]
        self.aws_conn_id = aws_conn_id

    def connection_ids(self) -> dict[str, str | None]:
        return {"aws_conn_id": self.aws_conn_id}

    def report(self, result: WindowResult, window: Window) -> dict[str, Any]:
        from airflow_obs_provider.jobs.topology import describe

        self.log.info("%s", describe(result))
        d = result.details
        return {"status": result.status, "observed_at": window.end.isoformat(), "nodes": d.get("nodes", 0),
                "edges": d.get("edges", 0), "opened": d.get("opened", 0), "closed": d.get("closed", 0)}
