"""The topology jobs: ``topo-iac`` (Terraform state) and ``topo-ansible`` (an Ansible project).

One run is one observation of one source of one tenant at ``at`` (the window end),
recorded as the ledger window ``[at - interval, at)`` of the job's configured
interval. Reading the source and writing the diff both happen inside the
window's single transaction, so bad input fails the ledger row and leaves every
table as it was. An ``at`` older than the source's latest applied observation is
recorded as ``skipped`` (see engine/topology/diff.py); re-running the latest
``at`` replaces that observation. An ``at`` beyond now + clock skew is refused; an
observation closing most of the source's open edges is refused unless the tenant's
block says ``allow_mass_close: true``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from airflow_obs_provider.engine.config import EtlConfig, TenantConfig, load_config
from airflow_obs_provider.engine.job_names import TOPO_IAC, TOPOLOGY_JOB_BY_SOURCE, TOPOLOGY_SOURCE_BY_JOB
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult, WindowTx, run_window
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.topology.diff import (
    apply_observation,
    lock_source,
    newer_observation,
    undo_future,
)
from airflow_obs_provider.engine.topology.model import Topology
from airflow_obs_provider.engine.window import Window, future_horizon, parse_time, require_not_future


def job_of(source: str) -> str:
    """The topology job observing ``source``; a clear error for an unknown source."""
    if source not in TOPOLOGY_JOB_BY_SOURCE:
        raise ValueError(f"topology source must be one of {sorted(TOPOLOGY_JOB_BY_SOURCE)}, got {source!r}")
    return TOPOLOGY_JOB_BY_SOURCE[source]


def read_source(source: str, tenant: TenantConfig, config: EtlConfig,
                secrets: SourceSecrets | None = None) -> tuple[Topology, dict[str, int]]:
    """The tenant's current topology according to ``source``."""
    if job_of(source) == TOPO_IAC:
        from airflow_obs_provider.engine.topology.terraform import read_terraform

        return read_terraform(tenant.terraform, base_dir=config.base_dir, secrets=secrets)
    from airflow_obs_provider.engine.topology.ansible import read_ansible

    return read_ansible(tenant.ansible, base_dir=config.base_dir)


def observation_window(config: EtlConfig, source: str, at: datetime) -> Window:
    """The ledger window of an observation at ``at``: ``[at - interval, at)``."""
    job = job_of(source)
    at = parse_time(at)
    return Window(at - config.job(job).interval, at)


def run(config: EtlConfig, tenant: str, source: str, at: datetime, *, pg_url: str | None = None,
        secrets: SourceSecrets | None = None, run_info: RunInfo | None = None) -> WindowResult:
    """Observe ``source`` for ``tenant`` at ``at`` and record the differences in ``topo_edge_time``."""
    job = job_of(source)
    tenant_cfg = config.tenant(tenant)
    require_not_future(at, f"{job} observation time (--at / data_interval_end)")
    window = observation_window(config, source, at)
    allow_mass_close = _allow_mass_close(tenant_cfg, source)

    def body(tx: WindowTx) -> None:
        lock_source(tx.cur, tx.tenant_id, source)
        horizon = future_horizon()
        repaired = undo_future(tx.cur, tx.tenant_id, source, horizon)
        newer = newer_observation(tx.cur, tx.tenant_id, source, window.end, job, horizon)
        if newer is not None:
            tx.skip(f"{source} was already observed at {newer.isoformat()}, later than {window.end.isoformat()}; "
                    "an older observation would rewrite history after it")
            return
        topo, reading = read_source(source, tenant_cfg, config, secrets)
        diff = apply_observation(tx.cur, tx.tenant_id, topo, window.end, allow_mass_close=allow_mass_close)
        tx.rows_in = len(topo.nodes) + diff.edges
        tx.rows_out = diff.nodes_written + diff.edges_written + repaired
        tx.details = {"source": source, "at": window.end.isoformat(), **reading, **diff.as_dict(),
                      **({"future_bounds_undone": repaired} if repaired else {})}

    return run_window(job, tenant, window, body, pg_url=pg_url, run_info=run_info,
                      configured_tenants=config.tenant_codes)


def _allow_mass_close(tenant: TenantConfig, source: str) -> bool:
    block = tenant.terraform if source == "terraform" else tenant.ansible
    value = block.get("allow_mass_close", False)
    if not isinstance(value, bool):
        raise ValueError(f"{source}.allow_mass_close must be true or false (got {value!r})")
    return value


def describe(result: WindowResult) -> str:
    """One line for logs and the CLI."""
    d: dict[str, Any] = result.details
    head = f"{result.job} {result.tenant_code} at {result.window.end.isoformat()}"
    if result.status == "skipped":
        return f"{head}: skipped ({d.get('skipped_reason')})"
    return (f"{head}: {result.status}, {d.get('nodes', 0)} nodes ({d.get('nodes_written', 0)} written), "
            f"{d.get('edges', 0)} edges: +{d.get('opened', 0)} opened, -{d.get('closed', 0)} closed, "
            f"{d.get('reopened', 0)} reopened, {d.get('replaced', 0)} replaced in {result.seconds:.3f}s")


def cli_run(args: argparse.Namespace) -> int:
    """``obs-etl run topo-iac|topo-ansible --config FILE --tenant CODE --at ISO [--pg-url URL]``."""
    config = load_config(args.config)
    result = run(config, args.tenant, TOPOLOGY_SOURCE_BY_JOB[args.job], parse_time(args.at), pg_url=args.pg_url,
                 secrets=SourceSecrets.from_env())
    print(describe(result))
    return 0
