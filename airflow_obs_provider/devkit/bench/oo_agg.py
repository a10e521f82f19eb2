"""``obs-etl bench oo-agg``: figures for the oo-agg job (prints, asserts nothing).

For each profile (seed: per minute ~5k logs, ~500 metric points, ~1k spans; x100) it generates
OO-layout data in a temporary folder, bootstraps a scratch database, and measures in a fresh
child process (so peak RSS is the job's own, ``ru_maxrss``):

- a plain minute window (metrics only) and a bucket-closing window (metrics + 5 minutes of
  spans and logs): seconds per stage (read, aggregate, write), end-to-end seconds, records/s;
- the approach a user would otherwise take: COPY the same raw records into Postgres, index the
  join keys and ANALYZE (as a competent user would), and aggregate there (``percentile_cont`` per
  resource/metric/minute, client/server self-join for calls), with the ratio to ours;
- a soak of 10 consecutive seed windows in one process: per-window seconds and RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

T0 = "2024-05-01T10:00:00Z"
# what the Postgres-only approach loads (it reads just these columns, as ours does its own)
METRIC_COLUMNS = ["_timestamp", "__hash__", "service_name", "value"]
SPAN_COLUMNS = ["_timestamp", "trace_id", "span_id", "reference_parent_span_id", "service_name", "span_kind",
                "span_status", "duration"]


# Memory is printed in MiB (2^20 bytes), the unit of ru_maxrss / 1024, for both readings.
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_windows(cfg_path: str, pg_url: str, windows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Run windows in this (child) process; per window: stages, seconds, records, RSS."""
    from airflow_obs_provider.engine.config import load_config
    from airflow_obs_provider.engine.window import Window, parse_time
    from airflow_obs_provider.jobs.oo_agg import run

    cfg = load_config(cfg_path)
    out = []
    for start, end in windows:
        t, cpu = time.perf_counter(), time.process_time()
        result = run(cfg, "bench", Window(parse_time(start), parse_time(end)), pg_url=pg_url)
        out.append({"window": f"{start}..{end}", "seconds": time.perf_counter() - t,
                    "cpu_s": time.process_time() - cpu, "records": result.rows_in,
                    "rows": result.rows_out, "stages": result.details.get("stages_s", {}),
                    "rss_mb": _rss_mb(), "peak_mb": _peak_mb()})
    return out


def _child_postgres_only(root: str, pg_url: str, metric_window: tuple[int, int], bucket: tuple[int, int],
                         slack_us: int) -> dict[str, Any]:
    """The do-it-in-Postgres approach over the same raw records: COPY, then SQL aggregation."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from airflow_obs_provider.engine.aggregate.metrics import DEFAULT_LOOKBACK_US
    from airflow_obs_provider.engine.db import connect
    from airflow_obs_provider.engine.oo.source import open_source

    src = open_source({"kind": "local", "path": root, "org": "default"})
    t = time.perf_counter()
    metric_tables = []
    for stream in src.streams("metrics"):
        tab = src.read("metrics", stream, metric_window[0] - DEFAULT_LOOKBACK_US, metric_window[1], METRIC_COLUMNS).table
        cols = {c: tab.column(c).cast(pa.string()) for c in ("__hash__", "service_name") if c in tab.column_names}
        metric_tables.append(pa.table({"ts": tab.column("_timestamp"), "metric": pa.array([stream] * tab.num_rows),
                                       "series": cols.get("__hash__", pa.nulls(tab.num_rows, pa.string())),
                                       "service": cols.get("service_name", pa.nulls(tab.num_rows, pa.string())),
                                       "value": tab.column("value")}))
    spans = []
    for stream in src.streams("traces"):
        tab = src.read("traces", stream, bucket[0] - slack_us, bucket[1] + slack_us, SPAN_COLUMNS).table
        spans.append(tab.select(SPAN_COLUMNS))
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    conn = connect(pg_url)
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE raw_metric (ts bigint, metric text, series text, service text, value float8)")
    cur.execute("CREATE TEMP TABLE raw_span (ts bigint, trace_id text, span_id text, parent_id text, service text, "
                "kind text, status text, duration bigint)")
    for name, tables in (("raw_metric", metric_tables), ("raw_span", spans)):
        for tab in tables:
            buf = io.BytesIO()
            pacsv.write_csv(tab, buf)
            buf.seek(0)
            cur.copy_expert(f"COPY {name} FROM STDIN WITH (FORMAT csv, HEADER true)", buf)  # noqa: S608 - fixed names
    copy_s = time.perf_counter() - t
    # what a competent user would do before aggregating: index the join keys, refresh statistics
    t = time.perf_counter()
    cur.execute("CREATE INDEX ON raw_span (trace_id, parent_id)")
    cur.execute("CREATE INDEX ON raw_metric (metric, series, ts)")
    cur.execute("ANALYZE raw_span")
    cur.execute("ANALYZE raw_metric")
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    # results are written to tables, as a real job must (not fetched and thrown away)
    cur.execute("""
        CREATE TEMP TABLE metric_out AS
        WITH inc AS (
          SELECT metric, service, ts, value, lag(value) OVER (PARTITION BY metric, series ORDER BY ts) AS prev
          FROM raw_metric)
        SELECT ts - ts %% 60000000 AS bucket, service, metric, avg(value) AS avg, max(value) AS max,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95, min(value) AS min, count(*) AS count,
               sum(CASE WHEN value >= prev THEN value - prev ELSE value END) AS increase
        FROM inc WHERE ts >= %s AND ts < %s GROUP BY 1, 2, 3""", metric_window)
    n_metric = cur.rowcount
    cur.execute("""
        CREATE TEMP TABLE call_out AS
        SELECT (c.ts - c.ts %% 300000000) AS bucket, c.service AS src, s.service AS dst, count(*) AS calls,
               count(*) FILTER (WHERE c.status = 'ERROR' OR s.status = 'ERROR') AS errors,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY c.duration / 1000.0) AS p50_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY c.duration / 1000.0) AS p95_ms
        FROM raw_span c JOIN raw_span s ON s.trace_id = c.trace_id AND s.parent_id = c.span_id
        WHERE c.kind = '3' AND s.kind = '2' AND c.service <> s.service AND c.ts >= %s AND c.ts < %s
        GROUP BY 1, 2, 3""", bucket)
    n_calls = cur.rowcount
    conn.commit()
    agg_s = time.perf_counter() - t
    conn.close()
    records = sum(x.num_rows for x in metric_tables) + sum(x.num_rows for x in spans)
    return {"read": read_s, "copy": copy_s, "index": index_s, "aggregate_sql": agg_s,
            "seconds": read_s + copy_s + index_s + agg_s,
            "records": records, "rows": n_metric + n_calls, "peak_mb": _peak_mb()}


def _child_generate(out: str, start: str, minutes: int, profile: str) -> dict[str, int]:
    from airflow_obs_provider.devkit.gen import generate
    from airflow_obs_provider.engine.oo.storage import Storage
    from airflow_obs_provider.engine.window import parse_time

    t0 = parse_time(start)
    return dict(generate(Storage.local(Path(out)), t0, t0 + timedelta(minutes=minutes), profile=profile, seed=1).rows)


def _in_child(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _fmt_stages(s: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}s" for k, v in s.items())


def _profile(profile: str, pg_server_url: str, work: Path, soak: bool) -> None:
    from airflow_obs_provider.devkit.bench.scratch import scratch_database
    from airflow_obs_provider.engine.aggregate.calls import DEFAULT_SLACK_US
    from airflow_obs_provider.engine.window import parse_time, to_us

    start = parse_time(T0)
    minutes = 16 if soak else 8
    t = time.perf_counter()
    # generated in a child too: a child's ru_maxrss starts from its parent's at fork time
    rows = _in_child(_child_generate, str(work / "oo"), T0, minutes, profile)
    print(f"\n== profile {profile}: generated {sum(rows.values())} records over {minutes} min "
          f"({rows}) in {time.perf_counter() - t:.1f}s")
    (work / "etl.yaml").write_text("tenants:\n  - code: bench\n    source: {kind: local, path: oo, org: default}\n")
    with scratch_database(pg_server_url, f"obs_bench_{profile}") as db:

        def w(a: int, b: int) -> tuple[str, str]:
            return ((start + timedelta(minutes=a)).isoformat(), (start + timedelta(minutes=b)).isoformat())

        # warm-up window (imports, first connection) then the measured ones, each in a fresh child
        ours: dict[str, Any] | None = None
        for label, win in (("minute window (metrics)", w(6, 7)), ("bucket-closing window (+5m spans, logs)", w(4, 5))):
            try:
                r = _in_child(_child_windows, str(work / "etl.yaml"), db, [win])[0]
            except Exception as exc:  # a benchmark reports, it does not stop at the first failure
                print(f"oo-agg {label}: FAILED: {type(exc).__name__}: {exc}")
                continue
            rate = r["records"] / r["seconds"] if r["seconds"] else 0.0
            print(f"oo-agg {label}: {r['seconds']:.3f}s end-to-end, {r['cpu_s']:.3f}s CPU "
                  f"({_fmt_stages(r['stages'])}), "
                  f"{r['records']} records, {rate:,.0f} records/s, {r['rows']} rows, peak RSS {r['peak_mb']:.0f} MiB")
            if label.startswith("bucket"):
                ours = r
        b0 = to_us(start)
        pg = _in_child(_child_postgres_only, str(work / "oo"), db, (b0 + 4 * 60_000_000, b0 + 5 * 60_000_000),
                       (b0, b0 + 300_000_000), DEFAULT_SLACK_US)
        print(f"postgres-only (COPY raw + percentile_cont) same window: {pg['seconds']:.3f}s "
              f"(read={pg['read']:.3f}s connect+copy={pg['copy']:.3f}s index+analyze={pg['index']:.3f}s "
              f"aggregate+write+commit={pg['aggregate_sql']:.3f}s), "
              f"{pg['records']} records, peak RSS {pg['peak_mb']:.0f} MiB")
        if ours is None:
            return
        # the log read feeds only the pattern miner, which the Postgres-only approach does not have
        without_patterns = ours["seconds"] - ours["stages"].get("patterns", 0.0) - ours["stages"].get("read_logs", 0.0)
        print(f"ratio postgres-only / oo-agg without log-pattern mining: {pg['seconds'] / without_patterns:.1f}x "
              f"(oo-agg {without_patterns:.3f}s also computes histograms, counter resets, virtual nodes, locators; "
              f"with mining {pg['seconds'] / ours['seconds']:.1f}x)")
        if soak:
            wins = [w(i, i + 1) for i in range(5, 15)]
            print("soak: 10 consecutive windows in one process")
            for r in _in_child(_child_windows, str(work / "etl.yaml"), db, wins):
                print(f"  {r['window']}: {r['seconds']:.3f}s, {r['cpu_s']:.3f}s CPU ({_fmt_stages(r['stages'])}) "
                      f"RSS {r['rss_mb']:.0f} MiB "
                      f"peak {r['peak_mb']:.0f} MiB")


def cli_bench(args: argparse.Namespace) -> int:
    from airflow_obs_provider.engine.db import redact_url, resolve_pg_url

    server = resolve_pg_url(args.pg_url)
    print(f"obs-etl bench oo-agg against {redact_url(server)} ({os.cpu_count()} CPUs)")
    profiles = [("seed", True), ("x10", False)] if args.quick else [("seed", True), ("x100", False)]
    for profile, soak in profiles:
        work = Path(tempfile.mkdtemp(prefix=f"obs-bench-{profile}-"))
        try:
            _profile(profile, server, work, soak)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"note": "figures above; nothing is asserted"}))
    return 0
