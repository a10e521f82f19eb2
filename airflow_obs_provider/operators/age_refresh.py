"""AgeRefreshOperator: refresh the active service-call graph for T = data_interval_end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_obs_provider.engine.age_graph import DEFAULT_ACTIVE_WINDOW
from airflow_obs_provider.engine.job_names import AGE_REFRESH
from airflow_obs_provider.engine.ledger import WindowResult
from airflow_obs_provider.engine.window import Window, parse_duration
from airflow_obs_provider.operators.windowed import WindowedJobOperator
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID


class AgeRefreshOperator(WindowedJobOperator):
    """Make AGE graph ``obs_graph`` hold exactly ``tenant``'s (or each of ``tenants``') calls of
    ``[T - active_window, T)``.

    T is the run's ``data_interval_end``; the run's own interval only supplies T
    (a 5-minute schedule refreshes a 10-minute active window). A run older than
    the graph's applied T is recorded as skipped. Without Apache AGE the task
    still succeeds, keeps the relational table ``active_call_edge`` and says so
    in the log.

    :param tenant: ``dim_tenant.code``
    :param tenants: several tenant codes, refreshed one after another
    :param postgres_conn_id: Airflow connection of the warehouse database
    :param active_window: how far back calls keep an edge alive (whole 5-minute buckets)
    """

    template_fields: Sequence[str] = ("tenants",)
    ui_color = "#d7ecf7"
    job_name = AGE_REFRESH

    def __init__(
        self,
        *,
        tenant: str | None = None,
        tenants: Sequence[str] | None = None,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        active_window: timedelta | str = DEFAULT_ACTIVE_WINDOW,
        **kwargs: Any,
    ) -> None:
        super().__init__(tenant=tenant, tenants=tenants, postgres_conn_id=postgres_conn_id, **kwargs)
        self.active_window = parse_duration(active_window)

    def job_options(self) -> dict[str, Any]:
        return {"active_window": self.active_window}

    def report(self, result: WindowResult, window: Window) -> dict[str, Any]:
        from airflow_obs_provider.jobs.age_refresh import describe

        missing = result.details.get("age_unavailable")
        if missing:
            self.log.warning("Apache AGE is missing: %s. Using the relational fallback: table active_call_edge "
                             "holds the active edges; install AGE and run obs-etl bootstrap for Cypher.", missing)
        self.log.info("%s", describe(result))
        return {"status": result.status, "edges": result.rows_out, "graph_mode": result.details.get("graph_mode"),
                "window_from": result.window.start.isoformat(), "window_to": result.window.end.isoformat()}
