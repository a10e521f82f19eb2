"""The ``oo-agg`` job: one window of OpenObserve data -> exactly-once aggregates in Postgres.

Per window ``W = [start, end)`` (aligned to the job's ``align``, default 1 minute), inside
the ledger's single window transaction (:func:`ledger.run_window`):

- every metric stream is read over ``[start - counter_lookback, end)`` and ``metric_1m`` is
  replaced for the minutes of W (:mod:`..engine.aggregate.metrics`);
- if W closes 5-minute buckets (a bucket end in ``(start, end]``), the trace streams are read
  over those buckets plus ``trace_slack`` on both sides and ``service_call_5m`` is replaced
  for those buckets (:mod:`..engine.aggregate.calls`); the log streams are read over the
  buckets and handed to the pattern miner for ``log_pattern_5m``. Earlier minutes never
  touch 5-minute tables, so rerunning one cannot overwrite a complete bucket with a partial one;
- ``dim_resource`` gets every resource seen (first/last seen widened, labels masked);
- one ``oo_locator`` per stream read; aggregate rows point to their stream's locator.

Options (``jobs.oo-agg`` in the YAML): ``counter_lookback`` (default ``5m``), ``trace_slack``
(default ``2m``; ``delay`` must exceed it plus OO's WAL horizon), ``duckdb_threads``,
``late_horizon`` (default ``5h``, OpenObserve's ``ZO_INGEST_ALLOWED_UPTO``: how far back
``obs-etl reconcile`` looks for windows whose source gained late records).

Bucket sources also record in the ledger (``source_digest``) which files each stream's read
considered and their rows in range, for :mod:`..engine.late_data`.

Guards (nothing is written when one trips; the message names the window and what to do):

- a window is run only once eligible (``end + delay <= now``): earlier, the bucket is incomplete;
- the records read per stream go to the ledger's shrink guard (:mod:`..engine.ledger`): a rerun
  that reads sharply fewer records than the window's last success fails instead of replacing the
  window's rows with less, unless ``allow_shrink`` (CLI ``--allow-shrink``; tenant ``allow_shrink``);
- the tenant's whole configuration (source, URN mapping, pattern miner options) is checked
  before the first window; the columns an explicit ``urn_mapping`` names must exist in the
  streams the window read (:func:`check_mapping_columns`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pyarrow as pa

from airflow_obs_provider.engine.aggregate.calls import (
    DEFAULT_SLACK_US,
    aggregate_calls,
    closed_buckets,
)
from airflow_obs_provider.engine.aggregate.calls import input_columns as span_columns
from airflow_obs_provider.engine.aggregate.calls import read_range as calls_read_range
from airflow_obs_provider.engine.aggregate.duck import connect_duckdb
from airflow_obs_provider.engine.aggregate.locators import Locator, locator_for
from airflow_obs_provider.engine.aggregate.metrics import DEFAULT_LOOKBACK_US, aggregate_metrics
from airflow_obs_provider.engine.aggregate.metrics import input_columns as metric_columns
from airflow_obs_provider.engine.aggregate.metrics import read_range as metrics_read_range
from airflow_obs_provider.engine.aggregate.resources import merge_resources
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.config import ConfigError, EtlConfig, JobConfig, load_config
from airflow_obs_provider.engine.cpus import available_cpus
from airflow_obs_provider.engine.db import redact_url
from airflow_obs_provider.engine.job_names import OO_AGG
from airflow_obs_provider.engine.late_data import DigestBuilder
from airflow_obs_provider.engine.ledger import RunInfo, WindowResult, WindowTx, run_window
from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.oo.source import OOSource, SourceSecrets, open_source
from airflow_obs_provider.engine.window import Window, WindowError, parse_duration, parse_time, split_range
from airflow_obs_provider.engine.writer import (
    METRIC_1M,
    SERVICE_CALL_5M,
    adopt_renamed_resources,
    replace_facts,
    replace_locators,
    upsert_resources,
)

JOB = OO_AGG
BUCKET_KINDS = ("local", "s3")  # sources whose files a digest can name (the API has no files)
# OpenObserve's ZO_INGEST_ALLOWED_UPTO default: records older than this are refused at ingest.
DEFAULT_LATE_HORIZON = "5h"
log = logging.getLogger(__name__)


class WindowNotEligible(WindowError):
    """The window ends too recently: OpenObserve may not have all of its data yet."""


def require_eligible(window: Window, job: JobConfig, now: datetime | None = None) -> None:
    """Refuse a window before ``end + delay``: reading it early would record a partial window as done."""
    moment = now or datetime.now(UTC)
    if not window.is_eligible(moment, job.delay, job.align):
        raise WindowNotEligible(
            f"{job.name} window {window} is not eligible before {window.eligible_at(job.delay).isoformat()} "
            f"(its end plus jobs.{job.name}.delay {job.delay}; now is {moment.isoformat(timespec='seconds')}): "
            "OpenObserve may not hold all of its data yet; run it later")


def check_mapping_columns(configured: Mapping[str, Any], mapping: UrnMapping,
                          reads: Sequence[tuple[str, Collection[str], int]], *, with_logs: bool) -> None:
    """An explicitly configured URN rule or service column must name columns that exist.

    ``reads`` are (stream type, column names, records) of the streams this window read (only
    streams with records count). A window that closes a bucket reads metrics, traces and logs:
    then every column an explicit rule names must exist in some metric or log stream, and an
    explicit ``service_column`` in some trace stream. A metrics-only minute fails when no rule
    can apply to any metric stream (every record would go to the fallback URN). Without this a
    misspelt column silently merges resources.
    """
    seen: dict[str, list[set[str]]] = {}
    for stream_type, columns, records in reads:
        if records:
            seen.setdefault(stream_type, []).append(set(columns))
    if "resources" in configured:
        resource_streams = seen.get("metrics", []) + (seen.get("logs", []) if with_logs else [])
        if with_logs and resource_streams:
            have = set().union(*resource_streams)
            for i, rule in enumerate(mapping.rules):
                missing = [c for c in rule.columns if c not in have]
                if missing:
                    raise ConfigError(
                        f"urn_mapping.resources[{i}] ({rule.template}) names column(s) {missing} that no "
                        "metric or log stream of this window has: check the spelling (OpenObserve flattens "
                        "attribute names to lower case with '_')")
        elif resource_streams and not any(set(rule.columns) <= cols for rule in mapping.rules
                                          for cols in resource_streams):
            raise ConfigError(
                "no urn_mapping.resources rule can apply to any metric stream of this window: each names a "
                f"column the streams lack ({', '.join(r.template for r in mapping.rules)}); check the spelling")
    if "service_column" in configured and seen.get("traces") and not any(
            mapping.service_column in cols for cols in seen["traces"]):
        raise ConfigError(f"urn_mapping.service_column {mapping.service_column!r} is not a column of any trace "
                          "stream of this window")


@dataclass(frozen=True)
class AggOptions:
    counter_lookback_us: int = DEFAULT_LOOKBACK_US
    trace_slack_us: int = DEFAULT_SLACK_US
    duckdb_threads: int | None = None
    late_horizon: timedelta = parse_duration(DEFAULT_LATE_HORIZON)  # windows reconcile checks for late data

    @classmethod
    def from_job(cls, job: JobConfig) -> AggOptions:
        opts = dict(job.options)
        try:
            lookback = parse_duration(opts.pop("counter_lookback", "5m"))
            slack = parse_duration(opts.pop("trace_slack", "2m"))
            threads = opts.pop("duckdb_threads", None)
            horizon = parse_duration(opts.pop("late_horizon", DEFAULT_LATE_HORIZON))
        except ValueError as exc:
            raise ConfigError(f"jobs.{JOB}: {exc}") from exc
        if lookback.total_seconds() < 0 or slack.total_seconds() < 0 or horizon.total_seconds() < 0:
            raise ConfigError(f"jobs.{JOB}: counter_lookback, trace_slack and late_horizon must not be negative")
        if slack > job.delay:
            log.warning("jobs.%s: trace_slack %s exceeds delay %s: calls crossing a bucket end may be missed",
                        JOB, slack, job.delay)
        return cls(int(lookback.total_seconds() * 1e6), int(slack.total_seconds() * 1e6),
                   int(threads) if threads else None, horizon)


def _read_all(source: OOSource, stream_type: str, from_us: int, to_us: int, locators: list[Locator],
              columns: Collection[str] | None = None, *, digest: DigestBuilder | None = None,
              own: tuple[int, int] | None = None) -> list[tuple[str, pa.Table]]:
    """Read ``columns`` of every stream of ``stream_type`` over ``[from_us, to_us)``, one locator each;
    ``digest`` records the files read and ``own`` (the part of the range that is this window's alone)."""
    got = []
    if digest is not None:
        digest.add_range(stream_type, (from_us, to_us), own or (from_us, to_us))
    for stream in source.streams(stream_type):
        read = source.read(stream_type, stream, from_us, to_us, columns)
        locators.append(locator_for(source, read, from_us, to_us))
        if digest is not None:
            digest.add_read(source.org, read)
        got.append((stream, read.table))
    return got


def _window_mining() -> ModuleType:
    """The window-level log mining, imported only by windows that close a bucket (the miner and its
    state cost memory a metrics-only minute does not need)."""
    from airflow_obs_provider.engine.log_mining import window

    return window


def _prefer_system_memory_pool() -> None:
    """Arrow's default pool (mimalloc) keeps a heap per reader thread for the life of the process;
    the system allocator hands it back: about 70 MB less peak RSS on a seed window, no slower at x100.
    (The provider's package sets ``ARROW_DEFAULT_MEMORY_POOL=system`` too, so mimalloc never starts;
    this covers a process that imported pyarrow first.) Arrow's compute threads follow the CPUs the
    process may use, not the host's count (see engine.cpus)."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    cpus = available_cpus()
    if pa.cpu_count() > cpus:
        pa.set_cpu_count(cpus)


def window_body(cfg: EtlConfig, tenant: str, window: Window, *,
                secrets: SourceSecrets | None = None) -> Callable[[WindowTx], None]:
    """Validate everything up front (a bad config never reaches the ledger) and return the window body."""
    tcfg = cfg.tenant(tenant)
    job = cfg.job(JOB)
    window.require_aligned(job.align)
    opts = AggOptions.from_job(job)
    mapping = UrnMapping.from_config(tcfg.urn_mapping)
    try:  # the miner's options are checked here, not only at the first bucket-closing window
        miner_config = MinerConfig.from_overrides(tcfg.patterns)
    except ValueError as exc:
        raise ConfigError(f"tenants[{tenant}].{exc}") from None
    source = open_source(tcfg.source, base_dir=cfg.base_dir, secrets=secrets or SourceSecrets.from_env())

    def body(tx: WindowTx) -> None:
        _prefer_system_memory_pool()
        # log reading is its own stage: only the pattern miner needs the logs
        stages = {"read": 0.0, "aggregate": 0.0, "read_logs": 0.0, "write": 0.0, "patterns": 0.0}
        t = time.perf_counter()
        locators: list[Locator] = []
        # bucket sources record what they read, so late-arriving files can be found later (reconcile)
        digest = DigestBuilder() if source.kind in BUCKET_KINDS else None
        m_from, m_to = metrics_read_range(window, opts.counter_lookback_us)
        metric_streams = _read_all(source, "metrics", m_from, m_to, locators, metric_columns(mapping),
                                   digest=digest, own=(window.start_us, window.end_us))
        ranges = [("metrics", m_from, m_to)]
        buckets = closed_buckets(window.start_us, window.end_us)
        trace_streams: list[tuple[str, pa.Table]] = []
        if buckets:
            trace_range = calls_read_range(*buckets, opts.trace_slack_us)
            trace_streams = _read_all(source, "traces", *trace_range, locators, span_columns(mapping),
                                      digest=digest, own=buckets)
            ranges += [("traces", *trace_range), ("logs", *buckets)]
        stages["read"] = time.perf_counter() - t

        # only column names are kept for the URN mapping check: the tables themselves go early
        seen = [("metrics", tb.column_names, tb.num_rows) for _, tb in metric_streams]
        seen += [("traces", tb.column_names, tb.num_rows) for _, tb in trace_streams]
        t = time.perf_counter()
        con = connect_duckdb(opts.duckdb_threads)
        try:
            metrics = aggregate_metrics(metric_streams, window, mapping, lookback_us=opts.counter_lookback_us,
                                        con=con)
            calls = aggregate_calls(trace_streams, *buckets, mapping, con=con) if buckets else None
            resources = merge_resources(metrics.resources, calls.resources if calls else [])
            # the raw points and spans are aggregated: let them go before the logs arrive
            con.close()
            con = connect_duckdb(opts.duckdb_threads)
            del metric_streams, trace_streams
            stages["aggregate"] = time.perf_counter() - t

            t = time.perf_counter()
            log_streams = (_read_all(source, "logs", *buckets, locators, _window_mining().input_columns(mapping),
                                     digest=digest) if buckets else [])
            stages["read_logs"] = time.perf_counter() - t
            seen += [("logs", tb.column_names, tb.num_rows) for _, tb in log_streams]
            check_mapping_columns(tcfg.urn_mapping, mapping, seen, with_logs=bool(buckets))

            t = time.perf_counter()
            renamed = adopt_renamed_resources(tx.cur, tx.tenant_id, calls.renames) if calls else 0
            upsert_resources(tx.cur, tx.tenant_id, resources)
            replace_locators(tx.cur, tx.tenant_id, locators, ranges)
            written = replace_facts(tx.cur, tx.tenant_id, METRIC_1M, metrics.rows, window.start_us, window.end_us,
                                    (m_from, m_to))
            call_rows = pattern_rows = 0
            if buckets and calls is not None:  # calls is set exactly when buckets is (mypy needs both)
                call_rows = replace_facts(tx.cur, tx.tenant_id, SERVICE_CALL_5M, calls.rows, *buckets, trace_range)
            stages["write"] = time.perf_counter() - t
            if buckets:
                t = time.perf_counter()
                pattern_rows = _window_mining().write_window_patterns(tx, log_streams, *buckets, mapping=mapping,
                                                                     config=miner_config, con=con)
                stages["patterns"] = time.perf_counter() - t
        finally:
            con.close()

        tx.rows_in = sum(loc.record_count for loc in locators)
        tx.source_digest = digest.as_json() if digest is not None else None
        # per stream, for the ledger's shrink guard (a stream that lost its data must not empty its rows)
        tx.record_parts = {f"{loc.stream_type}/{loc.stream}": loc.record_count for loc in locators}
        tx.rows_out = written + call_rows + pattern_rows + len(resources)
        tx.details.update({
            "stages_s": {k: round(v, 6) for k, v in stages.items()},
            "metric_rows": written, "call_rows": call_rows, "pattern_rows": pattern_rows,
            "resources": len(resources), "resources_renamed": renamed, "streams_read": len(locators),
            "buckets_5m": [buckets[0], buckets[1]] if buckets else None,
        })

    return body


def run(cfg: EtlConfig, tenant: str, window: Window, *, pg_url: str | None = None,
        secrets: SourceSecrets | None = None, run_info: RunInfo | None = None,
        allow_shrink: bool = False) -> WindowResult:
    """Run ``oo-agg`` for one tenant and window, exactly once (see the module doc).

    ``allow_shrink`` (or the tenant's ``allow_shrink: true``) lets the window's rows be replaced
    from sharply fewer records than its last successful run read (raw data deleted on purpose)."""
    require_eligible(window, cfg.job(JOB))
    body = window_body(cfg, tenant, window, secrets=secrets)
    return run_window(JOB, tenant, window, body, pg_url=pg_url, run_info=run_info,
                      configured_tenants=cfg.tenant_codes, allow_shrink=allow_shrink or cfg.tenant(tenant).allow_shrink)


def cli_run(args: argparse.Namespace) -> int:
    """``obs-etl run oo-agg``: every aligned window in ``[--from, --to)``, in order, stopping at a failure."""
    cfg = load_config(args.config)
    job = cfg.job(JOB)
    start, end = parse_time(args.start), parse_time(args.end)
    max_windows = args.max_windows
    count = _window_count(start, end, job)
    if count > max_windows:
        print(f"[{start.isoformat()}, {end.isoformat()}) holds {count} windows of {job.align}, more than "
              f"--max-windows {max_windows}: split the range, or raise --max-windows on purpose", file=sys.stderr)
        return 1
    windows = list(split_range(start, end, job.align))
    if not windows:
        print(f"no {job.align}-aligned window in [{start.isoformat()}, {end.isoformat()})", file=sys.stderr)
        return 1
    # everything that can be checked without data is checked before the first window runs
    window_body(cfg, args.tenant, windows[0])
    try:
        require_eligible(windows[-1], job)
    except WindowNotEligible as exc:
        print(f"obs-etl: error: {exc} (nothing was run)", file=sys.stderr)
        return 1
    total_in = total_out = 0
    t0 = time.perf_counter()
    for i, window in enumerate(windows, 1):
        try:
            result = run(cfg, args.tenant, window, pg_url=args.pg_url, allow_shrink=args.allow_shrink)
        except Exception as exc:
            print(f"[{i}/{len(windows)}] {window} failed: {redact_url(str(exc))}", file=sys.stderr)
            return 1
        total_in += result.rows_in
        total_out += result.rows_out
        print(f"[{i}/{len(windows)}] {window} {result.status} records={result.rows_in} rows={result.rows_out} "
              f"{result.seconds:.3f}s", flush=True)
    print(f"oo-agg {args.tenant}: {len(windows)} windows, {total_in} records read, {total_out} rows written "
          f"in {time.perf_counter() - t0:.1f}s")
    return 0


def _window_count(start: datetime, end: datetime, job: JobConfig) -> int:
    """How many aligned windows ``[start, end)`` holds, without listing them (a decade is 5M minutes)."""
    from airflow_obs_provider.engine.window import floor_time

    step = job.align
    first, last = floor_time(start, step), floor_time(end, step)
    return max(0, int((last - first) / step))
