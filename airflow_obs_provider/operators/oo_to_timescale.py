"""OOToTimescaleOperator: one window of OpenObserve data -> metric_1m, service_call_5m, dim_resource, oo_locator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_obs_provider.engine.config import EtlConfig
from airflow_obs_provider.engine.job_names import OO_AGG
from airflow_obs_provider.engine.ledger import WindowResult
from airflow_obs_provider.engine.window import Window
from airflow_obs_provider.operators.windowed import ConfiguredJobOperator
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID


class OOToTimescaleOperator(ConfiguredJobOperator):
    """Run the ``oo-agg`` job (see :mod:`airflow_obs_provider.jobs.oo_agg`) for ``tenant`` (or each of
    ``tenants``) over the run's ``[data_interval_start, data_interval_end)``, one ``jobs.oo-agg.interval``
    window after another, each exactly once.

    :param tenant: tenant code in the ETL configuration
    :param tenants: several tenant codes, run one after another (a failing one does not stop the others)
    :param config_path: the ETL YAML (default: ``OBS_ETL_CONFIG``, else the Airflow Variable)
    :param config_variable: Airflow Variable holding the YAML (default ``obs_etl_config``)
    :param postgres_conn_id: the warehouse (TimescaleDB) connection
    :param aws_conn_id: Amazon connection for ``kind: s3`` sources (``endpoint_url`` in its extra
        for S3-compatible stores)
    :param oo_conn_id: OpenObserve connection for ``kind: api`` sources (service account)
    :param file_list_conn_id: Postgres connection of OpenObserve's metadata DB (``file_list`` table)
    :param allow_shrink: rewrite the window even when the source now yields sharply fewer records than
        the window's last successful run (raw data deleted on purpose); by default such a run fails and
        leaves the window's rows as they are
    """

    template_fields: Sequence[str] = ("tenants", "config_path", "config_variable")
    ui_color = "#e8f4e4"
    job_name = OO_AGG

    def __init__(
        self,
        *,
        tenant: str | None = None,
        tenants: Sequence[str] | None = None,
        config_path: str | None = None,
        config_variable: str | None = None,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        aws_conn_id: str | None = None,
        oo_conn_id: str | None = None,
        file_list_conn_id: str | None = None,
        allow_shrink: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(tenant=tenant, tenants=tenants, config_path=config_path, config_variable=config_variable,
                         postgres_conn_id=postgres_conn_id, **kwargs)
        self.aws_conn_id = aws_conn_id
        self.oo_conn_id = oo_conn_id
        self.file_list_conn_id = file_list_conn_id
        self.allow_shrink = allow_shrink
        self._sources: list[dict[str, Any]] = []  # for lineage, set by execute

    def load_config(self) -> EtlConfig | None:
        cfg = super().load_config()
        assert cfg is not None
        self._sources = [{"org": code, **cfg.tenant(code).source} for code in self.tenants]
        return cfg

    def connection_ids(self) -> dict[str, str | None]:
        return {"aws_conn_id": self.aws_conn_id, "oo_conn_id": self.oo_conn_id,
                "file_list_conn_id": self.file_list_conn_id}

    def job_options(self) -> dict[str, Any]:
        return {"allow_shrink": self.allow_shrink}

    def report(self, result: WindowResult, window: Window) -> dict[str, Any]:
        self.log.info("%s %s %s: %s, %d records read, %d rows written in %.2fs", OO_AGG, result.tenant_code, window,
                      result.status, result.rows_in, result.rows_out, result.seconds)
        return {"status": result.status, "rows_in": result.rows_in, "rows_out": result.rows_out,
                "window_from": window.start.isoformat(), "window_to": window.end.isoformat()}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the tenant's OpenObserve streams in, the aggregate tables out.

        Imported here so OpenLineage stays an optional extra. Names follow the OpenLineage
        dataset naming: ``postgres://host:port`` + ``database.schema.table``.
        """
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_obs_provider.version_compat import BaseHook

        conn = BaseHook.get_connection(self.postgres_conn_id)
        namespace = f"postgres://{conn.host or 'localhost'}:{conn.port or 5432}"
        database = conn.schema or "postgres"
        outputs = [Dataset(namespace=namespace, name=f"{database}.public.{table}") for table in LINEAGE_TABLES]
        inputs = [Dataset(namespace=source_namespace(source), name=f"{source['org']}/{kind}")
                  for source in self._sources for kind in ("metrics", "traces", "logs")]
        return OperatorLineage(inputs=inputs, outputs=outputs)


LINEAGE_TABLES = ("metric_1m", "service_call_5m", "log_pattern", "log_pattern_5m", "dim_resource", "oo_locator")


def source_namespace(source: dict[str, Any]) -> str:
    """An OpenLineage namespace for a tenant's OpenObserve source block."""
    kind = source.get("kind")
    if kind == "s3":
        return f"s3://{source.get('bucket', '')}"
    if kind == "api":
        return f"openobserve://{urlsplit(str(source.get('base_url') or '')).netloc or 'api'}"
    return f"file://{source.get('path', '')}"
