"""``obs-etl``: the engine without Airflow (bootstrap, run a job for a range, demo data, benchmarks).

Each subcommand imports its module only when it runs, so ``obs-etl --help`` is
instant and a missing optional dependency only affects its own command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

# subcommand path -> "module:function"; each function takes the parsed argparse.Namespace
# and returns a process exit code.
HANDLERS: dict[str, str] = {
    "bootstrap": "airflow_obs_provider.engine.bootstrap:cli_bootstrap",
    "gen-oo-data": "airflow_obs_provider.devkit.gen:cli_generate",
    "run oo-agg": "airflow_obs_provider.jobs.oo_agg:cli_run",
    "run age-refresh": "airflow_obs_provider.jobs.age_refresh:cli_run",
    "run topo-iac": "airflow_obs_provider.jobs.topology:cli_run",
    "run topo-ansible": "airflow_obs_provider.jobs.topology:cli_run",
    "bench oo-agg": "airflow_obs_provider.devkit.bench.oo_agg:cli_bench",
    "bench patterns": "airflow_obs_provider.devkit.bench.log_miner:cli_bench",
    "bench age-refresh": "airflow_obs_provider.devkit.bench.age_refresh:cli_bench",
    "bench topology": "airflow_obs_provider.devkit.bench.topology:cli_bench",
    "bench reconcile": "airflow_obs_provider.devkit.bench.reconcile:cli_bench",
    "bench airflow": "airflow_obs_provider.devkit.bench.airflow:cli_bench",
    "reconcile": "airflow_obs_provider.jobs.reconcile:cli_reconcile",
    "status": "airflow_obs_provider.jobs.status:cli_status",
    "demo": "airflow_obs_provider.devkit.demo:cli_demo",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _pg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-url", default=None, help="Postgres URL (default: the PG_URL environment variable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obs-etl", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bootstrap", help="create or upgrade the schema (idempotent)")
    _pg(p)
    p.add_argument("--skip-extension", action="append", default=[], metavar="NAME",
                   help="an optional extension not to create (timescaledb, age, vector, pg_trgm, btree_gist)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("gen-oo-data", help="write realistic demo data in OpenObserve's bucket layout")
    p.add_argument("--out", required=True, help="a folder, or s3://bucket/prefix")
    p.add_argument("--from", dest="start", required=True, help="ISO start (inclusive)")
    p.add_argument("--to", dest="end", required=True, help="ISO end (exclusive)")
    p.add_argument("--profile", default="seed", choices=["seed", "x10", "x100"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--org", default="default")
    p.add_argument("--file-list-url", default=None,
                   help="also write OO's file_list table here (postgresql://... or sqlite:///path)")
    p.add_argument("--compaction", action="store_true",
                   help="with --file-list-url: add merged files and leave the replaced ones as deleted leftovers")

    run = sub.add_parser("run", help="run one job over every aligned window of a range").add_subparsers(
        dest="job", required=True)
    for job in ("oo-agg", "topo-iac", "topo-ansible"):
        p = run.add_parser(job)
        p.add_argument("--config", required=True, help="the ETL YAML (see include/etl.yaml)")
        p.add_argument("--tenant", required=True)
        if job == "oo-agg":
            p.add_argument("--from", dest="start", required=True)
            p.add_argument("--to", dest="end", required=True)
            # the same cap as obs_backfill (orchestration.backfill.MAX_WINDOWS), literal to keep --help instant
            p.add_argument("--max-windows", type=_positive_int, default=1024, metavar="N",
                           help="refuse a range of more than N windows (default 1024, as obs_backfill)")
            p.add_argument("--allow-shrink", action="store_true",
                           help="rewrite windows even when the source now yields sharply fewer records than "
                                "their last successful run (raw data deleted on purpose); default: refuse")
        else:
            p.add_argument("--at", required=True, help="observation time (the window end)")
        _pg(p)
    p = run.add_parser("age-refresh")
    p.add_argument("--tenant", required=True,
                   help="dim_tenant code; without --config it must already exist (or be 'default')")
    p.add_argument("--at", required=True, help="window end T: edges of [T-10m, T) become the graph")
    p.add_argument("--config", default=None,
                   help="the ETL YAML: checks the tenant, may create it, reads jobs.age-refresh.active_window")
    _pg(p)

    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(dest="job", required=True)
    for job in ("oo-agg", "patterns", "age-refresh", "topology", "reconcile", "airflow"):
        described = {"help": "the CLI against a real Airflow 3 scheduler on the same windows: wall and CPU of "
                                "whole process trees, task-process RSS, tables compared"} if job == "airflow" else {}
        p = bench.add_parser(job, **described)
        p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
        if job == "patterns":
            p.add_argument("--loghub", metavar="DIR", default=None,
                           help="score labeled LogHub-style CSVs found under DIR instead: group accuracy (GA), "
                                "parsing accuracy (PA) and F1 group accuracy (FGA), ours and plain drain3's")
        if job == "airflow":
            p.add_argument("--parallelism", type=_positive_int, default=2, metavar="N",
                           help="Airflow's [core] parallelism and the number of concurrent CLI processes (default 2)")
            p.add_argument("--shape", choices=["batched", "per-window"], default="batched",
                           help="batched: the jobs.oo-agg defaults (5-minute runs, 5 tenants per task, 30 backfill "
                                "windows per task); per-window: run_every 1m, tenants_per_task 1, windows_per_task 1 "
                                "(the shape before batching)")
        _pg(p)

    p = sub.add_parser("reconcile", help="rerun the oo-agg windows whose source gained late records")
    p.add_argument("--config", required=True, help="the ETL YAML (see include/etl.yaml)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--horizon", default=None,
                   help="check windows ending within this long before now (default: jobs.oo-agg.late_horizon, 5h)")
    _pg(p)

    p = sub.add_parser("status", help="per job and tenant: latest window, lag, recent failures, late-data reruns; "
                       "exit 2 when a window failed in the last 24 h, a circuit is open, or failures came with no "
                       "success")
    _pg(p)

    p = sub.add_parser("demo", help="the one-command demo: data, schema, DAG runs, summary")
    p.add_argument("--minutes", type=int, default=60)
    _pg(p)
    return parser


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    key = args.command if args.command not in ("run", "bench") else f"{args.command} {args.job}"
    module, func = HANDLERS[key].split(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


class RedactingFilter(logging.Filter):
    """Masks credentials in every log record a handler emits (message and traceback), as
    :func:`engine.db.redact_url` does for printed errors: a URL or a library's message can hold one."""

    def filter(self, record: logging.LogRecord) -> bool:
        from airflow_obs_provider.engine.db import redact_url

        message = record.getMessage()
        safe = redact_url(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_url("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    try:
        return int(_handler(args)(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for users; -v shows the traceback
        from airflow_obs_provider.engine.db import redact_url

        if args.verbose:
            print(redact_url(traceback.format_exc()).rstrip("\n"), file=sys.stderr)
        print(f"obs-etl: error: {redact_url(str(exc))}", file=sys.stderr)
        return 1


def entry(*_: Any) -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
