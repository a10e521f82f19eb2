"""``obs-etl bench airflow``: the same oo-agg windows through the CLI and through a real Airflow 3 scheduler.

Two cases, each run once by the CLI and once by Airflow (LocalExecutor, ``[core] parallelism`` = N):

- A: one tenant over 60 one-minute windows. CLI: N concurrent ``obs-etl run oo-agg`` processes over
  consecutive chunks of the range. Airflow: one ``obs_backfill`` run (conf job/tenant/from/to).
- B: 10 tenants over 10 one-minute windows. CLI: N concurrent ``obs-etl run oo-agg`` processes, one
  per tenant. Airflow: the ``obs_oo_agg`` catch-up, ``start_date``/``end_date`` bounding exactly
  those windows.

CPU is user+sys of whole process trees (see :mod:`proc_meter`) plus the watched Postgres backends.
The CLI cases run before Airflow starts. Airflow's idle rate (DAGs parsed, no run) is measured first
and, times each case's measured interval, subtracted from that case. Both sides write to their own
scratch database; the snapshots of the two must be equal (else exit 1). Case A's tenant is
``enabled: false``, so the scheduled DAG leaves it to the backfill.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from airflow_obs_provider.devkit.bench.proc_meter import CpuReading, ProcessSampler, read_cpu

MINUTE = timedelta(minutes=1)
SOLO = "solo"  # case A's tenant
BACKFILL_DAG = "obs_backfill"
SCHEDULED_DAG = "obs_oo_agg"
JOB_TASKS = frozenset({"aggregate", "run_window"})
# jobs.oo-agg keys of the shape before batching: one window and one tenant per task instance
PER_WINDOW_SHAPE = {"run_every": "1m", "tenants_per_task": 1, "windows_per_task": 1}


@dataclass(frozen=True)
class Plan:
    a_windows: int
    b_tenants: int
    b_windows: int
    idle_seconds: float
    parallelism: int
    per_window: bool
    start: datetime  # case A's first window; on a 5-minute boundary

    @property
    def a_range(self) -> tuple[datetime, datetime]:
        return self.start, self.start + self.a_windows * MINUTE

    @property
    def b_range(self) -> tuple[datetime, datetime]:
        return self.start, self.start + self.b_windows * MINUTE  # same minutes, other tenants

    @property
    def b_tenants_codes(self) -> list[str]:
        return [f"t{i:02d}" for i in range(1, self.b_tenants + 1)]

    @property
    def run_every_minutes(self) -> int:
        return 1 if self.per_window else 5


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float  # tree + Postgres, idle subtracted
    detail: str


def _progress(t0: float, text: str) -> None:
    print(f"[bench airflow {time.monotonic() - t0:6.1f}s] {text}", flush=True)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_plan(quick: bool, parallelism: int, per_window: bool, now: datetime | None = None) -> Plan:
    a, bt, bw = (10, 3, 5) if quick else (60, 10, 10)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    # recent (inside the default initial_lookback) and long past end + delay; 5-minute aligned
    start = now - timedelta(minutes=a + 20)
    start -= timedelta(minutes=start.minute % 5)
    return Plan(a, bt, bw, 15.0 if quick else 30.0, parallelism, per_window, start)


def write_config(path: Path, data: Path, plan: Plan) -> Path:
    source = {"kind": "local", "org": "default", "path": os.path.relpath(data, path.parent)}
    job: dict[str, Any] = {"delay": "1m", "initial_lookback": "24h"}
    job.update(PER_WINDOW_SHAPE if plan.per_window else {})
    b0, b1 = plan.b_range
    cfg = {
        "start_date": _iso(b0),
        "end_date": _iso(b1),
        # every tenant reads the same seed data: the work per tenant is the same, the output rows are its own
        "tenants": [{"code": SOLO, "enabled": False, "source": source}]
                   + [{"code": code, "source": source} for code in plan.b_tenants_codes],
        "jobs": {"oo-agg": job},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _generate(out: Path, plan: Plan) -> dict[str, int]:
    from airflow_obs_provider.devkit.bench.oo_agg import _child_generate, _in_child

    a0, a1 = plan.a_range
    # Five minutes on each side: calls and patterns of the boundary buckets. In a child process: a forked
    # child's ru_maxrss starts from its parent's RSS, so this process stays small for the CLI's peak.
    return _in_child(_child_generate, str(out), _iso(a0 - 5 * MINUTE), plan.a_windows + 10, "seed")  # type: ignore[no-any-return]


def _obs_etl_run(config: Path, pg_url: str, tenant: str, start: datetime, end: datetime) -> float:
    """Run ``obs-etl run oo-agg`` in a child; return its peak RSS in MiB (its own ``ru_maxrss``, from wait4)."""
    cmd = [sys.executable, "-m", "airflow_obs_provider.cli", "run", "oo-agg", "--config", str(config),
           "--tenant", tenant, "--from", _iso(start), "--to", _iso(end), "--pg-url", pg_url]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"obs-etl run oo-agg --tenant {tenant} failed rc={proc.returncode}:\n"
                               f"{err.read().decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024.0


def chunks(start: datetime, end: datetime, parts: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into at most ``parts`` consecutive ranges of whole minutes, sizes differing by one."""
    minutes = int((end - start) / MINUTE)
    parts = max(1, min(parts, minutes))
    out, t = [], start
    for i in range(parts):
        size = minutes // parts + (1 if i < minutes % parts else 0)
        out.append((t, t + size * MINUTE))
        t += size * MINUTE
    return out


def _measure(sampler: ProcessSampler, work: Callable[[], float | None], idle_rate: float = 0.0) -> Measured:
    """Run ``work`` (it may return its own wall seconds); CPU of the tree and watched backends over it."""
    root = os.getpid()
    before = read_cpu(root, sampler)
    started = time.monotonic()
    wall = work()
    after = read_cpu(root, sampler)
    return _measured(before, after, wall if wall is not None else time.monotonic() - started, idle_rate)


def _measured(before: CpuReading, after: CpuReading, wall: float, idle_rate: float) -> Measured:
    tree, pg = after.tree_s - before.tree_s, after.postgres_s - before.postgres_s
    idle = idle_rate * (after.at - before.at)
    return Measured(wall, tree + pg - idle, f"processes {tree:.1f} s + Postgres {pg:.1f} s - idle {idle:.1f} s")


def _cli_cases(plan: Plan, config: Path, db: str, sampler: ProcessSampler,
               t0: float) -> tuple[dict[str, Measured], float]:
    """Both cases through ``obs-etl run`` processes; also the largest peak RSS of those processes."""
    n = plan.parallelism
    a0, a1 = plan.a_range
    b0, b1 = plan.b_range
    peaks: list[float] = []

    def case_a() -> None:
        with ThreadPoolExecutor(n) as pool:
            peaks.extend(pool.map(lambda r: _obs_etl_run(config, db, SOLO, *r), chunks(a0, a1, n)))

    def case_b() -> None:
        with ThreadPoolExecutor(n) as pool:
            peaks.extend(pool.map(lambda code: _obs_etl_run(config, db, code, b0, b1), plan.b_tenants_codes))

    out = {}
    _progress(t0, f"CLI case A: {plan.a_windows} windows of {SOLO} in {n} processes")
    out["A"] = _measure(sampler, case_a)
    _progress(t0, f"CLI case A: {out['A'].wall_s:.1f} s wall, {out['A'].cpu_s:.1f} CPU s")
    _progress(t0, f"CLI case B: {plan.b_tenants} tenants x {plan.b_windows} windows, {n} processes at a time")
    out["B"] = _measure(sampler, case_b)
    _progress(t0, f"CLI case B: {out['B'].wall_s:.1f} s wall, {out['B'].cpu_s:.1f} CPU s")
    return out, max(peaks)


def _api_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _poll(what: str, check: Callable[[], Any], timeout: float, check_alive: Callable[[], None]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        check_alive()
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1.0)


@dataclass
class AirflowSide:
    rest: Any  # devkit.airflow_stack.AirflowRest
    check_alive: Callable[[], None]
    runs: dict[str, list[dict[str, Any]]]

    def backfill(self, plan: Plan) -> float:
        a0, a1 = plan.a_range
        triggered = time.time()
        run = self.rest.request("POST", f"/dags/{BACKFILL_DAG}/dagRuns", json={
            "logical_date": None, "conf": {"job": "oo-agg", "tenant": SOLO, "from": _iso(a0), "to": _iso(a1)}})
        path = f"/dags/{BACKFILL_DAG}/dagRuns/{quote(run['dag_run_id'], safe='')}"
        done = _poll(f"{BACKFILL_DAG} run", lambda: (r if (r := self.rest.request("GET", path))["state"]
                                                     in ("success", "failed") else None), 1800, self.check_alive)
        self.runs["A"] = [done]
        return _api_time(done["end_date"]) - triggered

    def catch_up(self, plan: Plan) -> float:
        b0, b1 = plan.b_range
        expected = plan.b_windows // plan.run_every_minutes
        in_range = lambda r: b0.timestamp() <= _api_time(r["data_interval_start"]) < b1.timestamp()  # noqa: E731
        unpaused = time.time()
        self.rest.set_paused(SCHEDULED_DAG, False)

        def finished() -> list[dict[str, Any]] | None:
            runs = [r for r in self.rest.dag_runs(SCHEDULED_DAG) if in_range(r)]
            return runs if len(runs) >= expected and all(r["state"] in ("success", "failed") for r in runs) else None

        runs = _poll(f"{expected} {SCHEDULED_DAG} catch-up runs", finished, 1800, self.check_alive)
        self.rest.set_paused(SCHEDULED_DAG, True)
        self.runs["B"] = runs
        return max(_api_time(r["end_date"]) for r in runs) - unpaused

    def task_instances(self, case: str) -> list[dict[str, Any]]:
        dag = BACKFILL_DAG if case == "A" else SCHEDULED_DAG
        return [ti for run in self.runs.get(case, []) for ti in self.rest.task_instances(dag, run["dag_run_id"])]


@contextmanager
def _airflow(work: Path, server: str, config: Path, target_db: str, plan: Plan, t0: float) -> Iterator[AirflowSide]:
    from airflow_obs_provider.devkit.airflow_stack import AirflowStack, airflow_conn_uri
    from airflow_obs_provider.devkit.demo import _dags_folder  # the checkout's dags/ or the packaged copies

    stack = AirflowStack(root=work / "airflow", dags_folder=_dags_folder(), pg_server_url=server, name="bench",
                         env_overrides={"OBS_ETL_CONFIG": str(config),
                                        "AIRFLOW_CONN_OBS_POSTGRES": airflow_conn_uri(target_db),
                                        "PG_URL": target_db,
                                        "AIRFLOW__CORE__PARALLELISM": str(plan.parallelism)})
    try:
        _progress(t0, f"starting Airflow (LocalExecutor, parallelism {plan.parallelism}); logs in {stack.logs}")
        rest = stack.start()
        for dag in (BACKFILL_DAG, SCHEDULED_DAG):
            rest.wait_dag(dag)
        rest.set_paused(BACKFILL_DAG, False)  # triggered only: unpausing creates no run
        yield AirflowSide(rest, stack.check_alive, {})
    finally:
        _progress(t0, "stopping Airflow")
        stack.stop()


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def _print_table(plan: Plan, cli: dict[str, Measured], af: dict[str, Measured]) -> None:
    labels = {"A": (f"1 tenant x {plan.a_windows} windows", f"CLI, {plan.parallelism} processes",
                    f"{BACKFILL_DAG}, one run"),
              "B": (f"{plan.b_tenants} tenants x {plan.b_windows} windows", f"CLI, {plan.parallelism} processes",
                    f"{SCHEDULED_DAG} catch-up")}
    print("\n| case | path | wall s | CPU s | Airflow/CLI wall | Airflow/CLI CPU |")
    print("|---|---|---|---|---|---|")
    for case in ("A", "B"):
        name, cli_label, af_label = labels[case]
        c, a = cli[case], af[case]
        print(f"| {case}: {name} | {cli_label} | {c.wall_s:.1f} | {c.cpu_s:.1f} | | |")
        print(f"| {case}: {name} | {af_label} | {a.wall_s:.1f} | {a.cpu_s:.1f} | "
              f"{_ratio(a.wall_s, c.wall_s)} | {_ratio(a.cpu_s, c.cpu_s)} |")
    for case in ("A", "B"):
        print(f"case {case} CPU: CLI {cli[case].detail}; Airflow {af[case].detail}")


def _peak_line(side: AirflowSide, sampler: ProcessSampler) -> str:
    task_of = {ti["id"]: ti["task_id"] for case in ("A", "B") for ti in side.task_instances(case)}
    job = [ti for ti in sampler.peak_rss_mib if task_of.get(ti) in JOB_TASKS]
    other = [ti for ti in sampler.peak_rss_mib if task_of.get(ti) not in JOB_TASKS]
    if not job:
        return "peak RSS of a task process: not seen (no aggregate/run_window task runner process was sampled)"
    private = max(sampler.peak_private_mib.get(ti, 0.0) for ti in job)
    others = f"; the other tasks' processes {max(sampler.peak_rss_mib[ti] for ti in other):.0f} MiB" if other else ""
    return (f"peak RSS of a task process: {max(sampler.peak_rss_mib[ti] for ti in job):.0f} MiB (VmHWM of "
            f"{len(job)} aggregate/run_window task runner processes sampled every {sampler.interval:.1f} s, at most "
            f"{private:.0f} MiB of it private, the rest shared with the executor process they fork from{others})")


def run_bench(plan: Plan, server: str) -> int:
    from airflow_obs_provider.devkit.bench.scratch import scratch_database
    from airflow_obs_provider.devkit.tables import diff_snapshots, row_counts, snapshot

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="obs-bench-airflow-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        rows = _generate(work / "oo", plan)
        _progress(t0, f"generated seed data ({sum(rows.values())} records) for [{_iso(plan.a_range[0])}, "
                      f"{_iso(plan.a_range[1])}) +- 5 min")
        config = write_config(work / "etl.yaml", work / "oo", plan)
        cli_db = stack.enter_context(scratch_database(server, "obs_bench_af_cli"))
        af_db = stack.enter_context(scratch_database(server, "obs_bench_af_dags"))
        sampler = stack.enter_context(ProcessSampler([_dbname(cli_db), _dbname(af_db)]))

        cli, cli_peak = _cli_cases(plan, config, cli_db, sampler, t0)

        side = stack.enter_context(_airflow(work, server, config, af_db, plan, t0))
        meta = side.rest.stack.meta_url if side.rest.stack else None
        if meta:
            sampler.watch_database(_dbname(meta))
        _progress(t0, f"DAGs parsed; measuring Airflow's idle CPU for {plan.idle_seconds:.0f} s")
        idle = _measure(sampler, lambda: time.sleep(plan.idle_seconds))
        idle_rate = idle.cpu_s / plan.idle_seconds
        _progress(t0, f"idle: {idle_rate:.3f} CPU s per s ({idle.detail})")
        af: dict[str, Measured] = {}
        _progress(t0, f"Airflow case A: {BACKFILL_DAG} over {plan.a_windows} windows of {SOLO}")
        af["A"] = _measure(sampler, lambda: side.backfill(plan), idle_rate)
        _progress(t0, f"Airflow case A: {af['A'].wall_s:.1f} s wall, {af['A'].cpu_s:.1f} CPU s")
        _progress(t0, f"Airflow case B: {SCHEDULED_DAG} catch-up of {plan.b_tenants} tenants x {plan.b_windows} "
                      "windows")
        af["B"] = _measure(sampler, lambda: side.catch_up(plan), idle_rate)
        _progress(t0, f"Airflow case B: {af['B'].wall_s:.1f} s wall, {af['B'].cpu_s:.1f} CPU s")

        shape = "one window and one tenant per task (per-window)" if plan.per_window else "batched (defaults)"
        print(f"\nobs-etl bench airflow: {os.cpu_count()} CPUs, parallelism {plan.parallelism}, task shape {shape}; "
              f"idle {idle_rate:.3f} CPU s/s subtracted from the Airflow cases")
        _print_table(plan, cli, af)
        failed = [f"{r['dag_id']} {r['dag_run_id']}" for case in ("A", "B") for r in side.runs.get(case, [])
                  if r["state"] != "success"]
        print(_peak_line(side, sampler))
        print(f"peak RSS of a CLI process: {cli_peak:.0f} MiB (largest ru_maxrss of the obs-etl run processes)")
        got, want = snapshot(af_db), snapshot(cli_db)
        diff = diff_snapshots(got, want)
        print(f"tables equal {row_counts(want)}" if not diff else f"tables DIFFER (Airflow vs CLI):\n{diff}")
        if failed:
            print(f"runs that did not succeed: {', '.join(failed)}")
        return 1 if diff or failed else 0
    return 1  # unreachable: the ExitStack does not swallow exceptions


def _dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def cli_bench(args: argparse.Namespace) -> int:
    from airflow_obs_provider.engine.db import redact_url, resolve_pg_url

    server = resolve_pg_url(args.pg_url)
    plan = make_plan(args.quick, args.parallelism, args.shape == "per-window")
    print(f"obs-etl bench airflow against {redact_url(server)}: case A 1 tenant x {plan.a_windows} windows, "
          f"case B {plan.b_tenants} tenants x {plan.b_windows} windows, parallelism {plan.parallelism}", flush=True)
    return run_bench(plan, server)
