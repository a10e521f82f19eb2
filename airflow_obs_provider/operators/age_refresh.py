"""AgeRefreshOperator: refresh the active service-call graph for T = data_interval_end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_obs_provider.engine.age_graph import DEFAULT_ACTIVE_WINDOW, JOB
from airflow_obs_provider.engine.window import parse_duration
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    counting_failures,
    emit_window_stats,
    run_info_from_context,
    window_from_context,
)
from airflow_obs_provider.orchestration.schedule import DEFAULT_POSTGRES_CONN_ID
from airflow_obs_provider.version_compat import BaseOperator


class AgeRefreshOperator(BaseOperator):
    """Make AGE graph ``obs_graph`` hold exactly ``tenant``'s calls of ``[T - active_window, T)``.

    T is the run's ``data_interval_end``; the run's own interval only supplies T
    (a 5-minute schedule refreshes a 10-minute active window). A run older than
    the graph's applied T is recorded as skipped. Without Apache AGE the task
    still succeeds, keeps the relational table ``active_call_edge`` and says so
    in the log.

    :param tenant: ``dim_tenant.code``
    :param postgres_conn_id: Airflow connection of the warehouse database
    :param active_window: how far back calls keep an edge alive (whole 5-minute buckets)
    """

    template_fields: Sequence[str] = ("tenant",)
    ui_color = "#d7ecf7"

    def __init__(
        self,
        *,
        tenant: str,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        active_window: timedelta | str = DEFAULT_ACTIVE_WINDOW,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant
        self.postgres_conn_id = postgres_conn_id
        self.active_window = parse_duration(active_window)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_obs_provider.jobs.age_refresh import describe, run

        at = window_from_context(context).end
        with counting_failures(JOB, self.tenant):
            result = run(self.tenant, at, pg_url=postgres_url(self.postgres_conn_id),
                         run_info=run_info_from_context(context), active_window=self.active_window)
        missing = result.details.get("age_unavailable")
        if missing:
            self.log.warning("Apache AGE is missing: %s. Using the relational fallback: table active_call_edge "
                             "holds the active edges; install AGE and run obs-etl bootstrap for Cypher.", missing)
        self.log.info("%s", describe(result))
        emit_window_stats(JOB, self.tenant, result)
        return {"status": result.status, "edges": result.rows_out, "graph_mode": result.details.get("graph_mode"),
                "window_from": result.window.start.isoformat(), "window_to": result.window.end.isoformat()}
