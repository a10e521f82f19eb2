"""The windowed jobs, one entry each: name, window grain, which connections it reads, and one
``run(call)`` with the same shape for every job.

The Airflow layer (the operators and the ``obs_backfill`` DAG) runs every window through
:class:`airflow_obs_provider.operators.windowed.WindowRunner`, which looks the job up here; the
CLI keeps its own ``obs-etl run ...`` commands. Where each job computes its window:

- ``oo-agg``: the run's interval itself (``Window.from_interval``), checked eligible and aligned in
  :func:`airflow_obs_provider.jobs.oo_agg.run`; closed 5-minute buckets inside it in ``window_body``.
- ``age-refresh``: ``[T - active_window, T)`` for T = the interval's end, in
  :func:`airflow_obs_provider.engine.age_graph.active_window_ending`.
- ``topo-iac`` / ``topo-ansible``: an observation at T = the interval's end, the ledger window in
  :func:`airflow_obs_provider.jobs.topology.observation_window`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow_obs_provider.engine.config import JOB_GRAIN, EtlConfig
from airflow_obs_provider.engine.job_names import (
    AGE_REFRESH,
    OO_AGG,
    TOPO_ANSIBLE,
    TOPO_IAC,
    TOPOLOGY_SOURCE_BY_JOB,
)
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import Window

# The connection ids a job may read its source credentials through (names of the operators' arguments).
SOURCE_CONNECTIONS = ("aws_conn_id", "oo_conn_id", "file_list_conn_id")


@dataclass(frozen=True)
class JobCall:
    """One window of one tenant, everything resolved: what every job's ``run`` takes."""

    config: EtlConfig | None  # None: a caller without configuration (AgeRefreshOperator)
    tenant: str
    window: Window
    pg_url: str
    run_info: RunInfo
    secrets: SourceSecrets | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # allow_shrink, active_window


@dataclass(frozen=True)
class Job:
    name: str
    grain: timedelta  # windows are whole multiples of it (the tables' bucket width)
    run: Callable[[JobCall], WindowResult]
    # which of SOURCE_CONNECTIONS it reads, and whether a window of a tenant resolves them, given the
    # connection ids the caller has (False: the job gets secrets=None)
    connections: tuple[str, ...] = ()
    needs_secrets: Callable[[EtlConfig | None, str, Mapping[str, str | None]], bool] = (
        lambda config, tenant, ids: False)


def _run_oo_agg(call: JobCall) -> WindowResult:
    from airflow_obs_provider.jobs import oo_agg

    assert call.config is not None, "oo-agg needs the ETL configuration"
    return oo_agg.run(call.config, call.tenant, call.window, pg_url=call.pg_url, secrets=call.secrets,
                      run_info=call.run_info, allow_shrink=bool(call.options.get("allow_shrink", False)))


def _run_age_refresh(call: JobCall) -> WindowResult:
    from airflow_obs_provider.jobs import age_refresh

    kwargs: dict[str, Any] = {}
    if "active_window" in call.options:
        kwargs["active_window"] = call.options["active_window"]
    if call.config is not None:
        kwargs["configured_tenants"] = call.config.tenant_codes
    return age_refresh.run(call.tenant, call.window.end, pg_url=call.pg_url, run_info=call.run_info, **kwargs)


def _run_topology(call: JobCall, job: str) -> WindowResult:
    from airflow_obs_provider.jobs import topology

    assert call.config is not None, f"{job} needs the ETL configuration"
    return topology.run(call.config, call.tenant, TOPOLOGY_SOURCE_BY_JOB[job], call.window.end, pg_url=call.pg_url,
                        secrets=call.secrets, run_info=call.run_info)


def _terraform_on_s3(config: EtlConfig | None, tenant: str, ids: Mapping[str, str | None]) -> bool:
    """S3 credentials are resolved only when an Amazon connection is given and one of the tenant's
    Terraform states is on S3."""
    if not ids.get("aws_conn_id") or config is None:
        return False
    from airflow_obs_provider.engine.topology.terraform import uses_s3

    return uses_s3(config.tenant(tenant).terraform)


JOBS: dict[str, Job] = {
    OO_AGG: Job(OO_AGG, JOB_GRAIN[OO_AGG], _run_oo_agg, connections=SOURCE_CONNECTIONS,
                needs_secrets=lambda config, tenant, ids: True),  # empty secrets, never the environment
    AGE_REFRESH: Job(AGE_REFRESH, JOB_GRAIN[AGE_REFRESH], _run_age_refresh),
    TOPO_IAC: Job(TOPO_IAC, JOB_GRAIN[TOPO_IAC], lambda call: _run_topology(call, TOPO_IAC),
                  connections=("aws_conn_id",), needs_secrets=_terraform_on_s3),
    TOPO_ANSIBLE: Job(TOPO_ANSIBLE, JOB_GRAIN[TOPO_ANSIBLE], lambda call: _run_topology(call, TOPO_ANSIBLE)),
}


def job(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise ValueError(f"unknown job {name!r} (known: {', '.join(JOBS)})") from None
