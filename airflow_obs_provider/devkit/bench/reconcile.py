"""``obs-etl bench reconcile``: what a late-data pass costs when nothing arrived late (prints, asserts nothing).

Generates five hours of OO-layout data (seed profile; ``--quick``: 30 minutes) in a temporary folder
together with OO's ``file_list`` table in a scratch database, aggregates every one-minute window
once per file-selection path (listing the hour prefixes, and ``file_list``), then runs one
``reconcile`` pass over all of them with nothing new and prints its LIST calls, ``file_list``
queries, files opened, warehouse statements, wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow_obs_provider.devkit.bench.scratch import scratch_database
from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import floor_time, split_range
from airflow_obs_provider.jobs import oo_agg
from airflow_obs_provider.jobs.reconcile import reconcile

MINUTE = timedelta(minutes=1)


def cli_bench(args: argparse.Namespace) -> int:
    span = timedelta(minutes=30) if args.quick else timedelta(hours=5)
    # recent windows, as in production: all of them inside the late horizon of the pass
    end = floor_time(datetime.now(UTC), MINUTE) - timedelta(minutes=15)
    start = end - span
    windows = list(split_range(start, end, MINUTE))
    with tempfile.TemporaryDirectory(prefix="obs-bench-reconcile-") as tmp, \
            scratch_database(args.pg_url, "bench_reconcile_meta") as meta:
        root = Path(tmp)
        t = time.perf_counter()
        # the counter lookback before the first window and the trace slack after the last
        gen = generate(Storage.local(root / "oo"), start - timedelta(minutes=10), end + timedelta(minutes=5),
                       seed=1, file_list_url=meta)
        print(f"generated {len(gen.files)} files, {sum(gen.rows.values())} records in {time.perf_counter() - t:.1f}s")
        (root / "etl.yaml").write_text("tenants:\n  - code: bench\n    source: {kind: local, path: oo, org: default}\n")
        cfg = load_config(root / "etl.yaml")
        for mode, secrets in (("listing", SourceSecrets()), ("file_list", SourceSecrets(file_list_url=meta))):
            with scratch_database(args.pg_url, f"bench_reconcile_{mode}") as db:
                t = time.perf_counter()
                for w in windows:
                    oo_agg.run(cfg, "bench", w, pg_url=db, secrets=secrets)
                print(f"{mode}: aggregated {len(windows)} one-minute windows in {time.perf_counter() - t:.1f}s")
                report = reconcile(cfg, "bench", pg_url=db, secrets=secrets, horizon=span + timedelta(hours=1))
                assert report.mode == mode
                print(f"{mode}: reconcile pass with nothing new over {report.checked} windows: "
                      f"{len(report.reruns)} reruns, {report.list_calls} LIST calls, "
                      f"{report.file_list_queries} file_list queries, {report.files_read} files opened, "
                      f"{report.queries} warehouse statements, {report.seconds:.3f}s wall, "
                      f"{report.cpu_seconds:.3f}s CPU")
    return 0
