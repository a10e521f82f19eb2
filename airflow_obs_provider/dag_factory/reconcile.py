"""The ``obs_reconcile`` DAG: oo-agg windows whose source gained late records are rerun."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from airflow_obs_provider.dag_factory.common import (
    TAGS,
    dag_failure_callback,
    default_args,
    end_with_done,
)
from airflow_obs_provider.dag_factory.config import runtime_config
from airflow_obs_provider.engine.job_names import (
    OO_AGG,
)
from airflow_obs_provider.engine.window import floor_time
from airflow_obs_provider.hooks.warehouse import postgres_url
from airflow_obs_provider.operators.base import (
    STATS_PREFIX,
    run_info_from_context,
)
from airflow_obs_provider.orchestration.schedule import schedule_settings
from airflow_obs_provider.version_compat import (
    DAG,
    DeltaDataIntervalTimetable,
    Stats,
    task,
)

log = logging.getLogger(__name__)

# How often obs_reconcile looks for late-arriving records (jobs.oo-agg.reconcile_interval).
RECONCILE_INTERVAL = "15m"


def emit_reconcile_stats(tenant: str, report: Any) -> None:
    """Counters of one reconcile pass: windows rerun for late records, and those records."""
    name = f"{STATS_PREFIX}.oo_agg"
    tags = {"job": OO_AGG, "tenant": tenant}
    Stats.incr(f"{name}.late_windows", count=int(report.late_windows), tags=tags)
    Stats.incr(f"{name}.late_records", count=int(report.late_records), tags=tags)


def build_reconcile_dag(dags_dir: Path | None = None) -> DAG:
    from airflow_obs_provider.engine.window import parse_duration

    settings = schedule_settings(dags_dir)
    fallback = str(settings.config_file) if settings.config_file else None
    oo_job = settings.job(OO_AGG)
    interval = parse_duration(oo_job.options.get("reconcile_interval", RECONCILE_INTERVAL))
    with DAG(
        dag_id="obs_reconcile",
        schedule=DeltaDataIntervalTimetable(interval),
        start_date=floor_time(settings.start_date, interval),
        catchup=False,  # a pass checks the whole late horizon as of now: missed passes need no replay
        max_active_runs=1,
        default_args=default_args(),
        tags=[*TAGS, OO_AGG, "reconcile"],
        doc_md=_RECONCILE_DOC,
        on_failure_callback=partial(dag_failure_callback, callback_path=None),
    ) as dag:

        @task(task_id="select_tenants")
        def select_tenants() -> list[dict[str, list[str]]]:
            """Every enabled tenant (oo-agg runs for all of them), in batches of jobs.oo-agg.tenants_per_task."""
            from airflow_obs_provider.orchestration.selection import in_batches, tenants_for_job

            cfg, _ = runtime_config(fallback)
            codes = [t.code for t in tenants_for_job(cfg, OO_AGG)]
            return [{"tenants": batch} for batch in in_batches(codes, cfg.job(OO_AGG).tenants_per_task)]

        @task(task_id="reconcile", map_index_template="{{ task.op_kwargs['tenants'] | join(',') }}")
        def reconcile_tenants(tenants: list[str], **context: Any) -> list[dict[str, Any]]:
            """Rerun each tenant's windows that gained late records; every tenant is checked, then the task
            fails (and retries: a pass is idempotent) naming the tenants with a failed rerun."""
            from airflow_obs_provider.hooks.source_secrets import source_secrets
            from airflow_obs_provider.jobs.reconcile import format_report, reconcile

            cfg, _ = runtime_config(fallback)
            secrets = source_secrets(aws_conn_id=settings.aws_conn_id, oo_conn_id=settings.oo_conn_id,
                                     file_list_conn_id=settings.file_list_conn_id)
            pg_url = postgres_url(settings.postgres_conn_id)
            results, problems = [], []
            for tenant in tenants:
                try:
                    report = reconcile(cfg, tenant, pg_url=pg_url, secrets=secrets,
                                       run_info=run_info_from_context(context))
                except Exception as exc:
                    log.exception("reconcile %s failed", tenant)
                    problems.append(f"{tenant}: {type(exc).__name__}: {exc}")
                    continue
                for line in format_report(report):
                    log.info("%s", line)
                emit_reconcile_stats(tenant, report)
                if not report.ok:
                    failed = [f"{r.job} {r.window}: {r.error}" for r in report.reruns if r.status == "failed"]
                    failed += [f"{w} not checked: {error}" for w, error in report.unreadable]
                    problems.append(f"{tenant}: {len(failed)} problem(s): {'; '.join(failed)}")
                results.append({"tenant": tenant, "checked": report.checked, "late_windows": report.late_windows,
                                "late_records": report.late_records, "compacted": report.compacted})
            if problems:
                raise RuntimeError(f"reconcile: {len(problems)} of {len(tenants)} tenants failed: {' | '.join(problems)}")
            return results

        end_with_done(reconcile_tenants.expand_kwargs(select_tenants()))
    return dag


_RECONCILE_DOC = """
### obs_reconcile: late-arriving records, every 15 minutes

OpenObserve accepts records up to 5 hours late (`ZO_INGEST_ALLOWED_UPTO`). For each enabled tenant
(`reconcile` runs batches of `jobs.oo-agg.tenants_per_task`; one failing tenant never stops the others), it compares what every successful `obs_oo_agg` window of the last `jobs.oo-agg.late_horizon`
(default 5h) read (the ledger's `source_digest`) with the bucket today and reruns, exactly once, the
windows whose source gained records, plus the current graph refresh when it reads a recomputed
5-minute bucket. Stats: `obs_etl.oo_agg.late_windows`, `obs_etl.oo_agg.late_records`.
Same as `obs-etl reconcile --config FILE --tenant CODE`.
"""
