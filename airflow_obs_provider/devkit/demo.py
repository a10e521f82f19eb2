"""``obs-etl demo``: the whole product on one machine, with one command (``make demo``).

Steps (each prints a progress line):
1. start the dev stack's Postgres (``scripts/devstack start pg``) unless ``--pg-url``/``PG_URL`` names one;
2. generate the last ``--minutes`` of OpenObserve-layout data into a local folder;
3. recreate database ``obs_demo`` and bootstrap the schema;
4. write a demo configuration and a local Airflow home (SQLite metadata DB, the Postgres connection);
5. run the DAGs with that Airflow (``dag.test``, all in one process: :mod:`.demo_runner`): ``obs_backfill``
   over every minute of oo-agg, ``obs_oo_agg`` once more for the last five minutes (a rerun: same rows),
   ``obs_backfill`` for the graph refresh, ``obs_topo_iac`` and ``obs_topo_ansible`` for the last window;
6. print a summary read back from Postgres and how to open the Airflow UI on those runs.

Everything lands under ``$OBS_CACHE_DIR/demo`` (default ``~/.cache/obs-etl/demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_obs_provider.engine.db import connect, redact_url
from airflow_obs_provider.engine.window import floor_time

DEMO_DB = "obs_demo"
TENANT = "demo"
PACKAGE = Path(__file__).resolve().parents[1]  # airflow_obs_provider/ (installed or in a checkout)
# The checkout root when run from one (dags/, include/, scripts/devstack); in an installed wheel it
# is site-packages, where those are absent and the packaged copies (or a clear error) take over.
REPO = PACKAGE.parent


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "oo"

    @property
    def config(self) -> Path:
        return self.root / "etl.yaml"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def _progress(t0: float, text: str) -> None:
    print(f"[demo {time.monotonic() - t0:6.1f}s] {text}", flush=True)


def demo_root() -> Path:
    cache = os.environ.get("OBS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "obs-etl")
    return Path(cache) / "demo"


def _dags_folder() -> Path:
    """The repository's dags/ in a checkout, else the example DAGs packaged in the wheel."""
    for candidate in (REPO / "dags", PACKAGE / "example_dags"):
        if (candidate / "obs_backfill.py").is_file():
            return candidate
    raise FileNotFoundError("neither dags/ nor the packaged example_dags/ holds the obs_* DAG files")


def _include_folder() -> Path | None:
    for candidate in (REPO / "include", PACKAGE / "include"):
        if (candidate / "terraform").is_dir() and (candidate / "ansible").is_dir():
            return candidate
    return None


def start_postgres(pg_url: str | None) -> str:
    """A server URL: the given one, ``PG_URL``, or the dev stack's (started if needed)."""
    url = pg_url or os.environ.get("PG_URL")
    if url:
        return url
    script = REPO / "scripts" / "devstack"
    if not script.is_file():
        raise RuntimeError("no Postgres: pass --pg-url or set PG_URL (scripts/devstack is only in a checkout)")
    out = subprocess.run(["bash", str(script), "start", "pg"], check=True, capture_output=True, text=True,
                         env={**os.environ, "OBS_PYTHON": sys.executable})
    env_file = Path(out.stdout.strip().splitlines()[-1])
    for line in env_file.read_text().splitlines():
        m = re.match(r"export PG_URL=(.*)", line)
        if m:
            return m.group(1).strip("'\"")
    raise RuntimeError(f"scripts/devstack did not export PG_URL (see {env_file})")


def recreate_database(server_url: str, name: str = DEMO_DB) -> str:
    from psycopg2 import sql

    conn = connect(server_url, autocommit=True, application_name="obs-etl demo")
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def write_demo_config(paths: DemoPaths, start: datetime) -> None:
    include = _include_folder()
    topology = ""
    if include is not None:
        topology = (f"    terraform: {{states: [{json.dumps(str(include / 'terraform'))}]}}\n"
                    f"    ansible:\n      project: {json.dumps(str(include / 'ansible'))}\n"
                    "      inventory: [inventory/hosts.ini, inventory/edge.yml]\n"
                    "      playbooks: [playbooks/site.yml]\n")
    paths.config.write_text(
        "# Written by obs-etl demo: local OpenObserve-layout data, no delay (the files are complete).\n"
        f"start_date: {start.isoformat()}\n"
        "jobs:\n"
        "  oo-agg: {delay: 0s, initial_lookback: 2h}\n"
        "  age-refresh: {delay: 0s, initial_lookback: 2h}\n"
        "  topo-iac: {initial_lookback: 2h}\n"
        "  topo-ansible: {initial_lookback: 2h}\n"
        "tenants:\n"
        f"  - code: {TENANT}\n"
        "    name: Demo tenant\n"
        "    source: {kind: local, path: oo, org: default}\n"
        + topology)


def airflow_env(paths: DemoPaths, pg_url: str) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_dags_folder()),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "OBS_ETL_CONFIG": str(paths.config),
        "AIRFLOW_CONN_OBS_POSTGRES": "postgres://" + pg_url.split("://", 1)[1],
    }


def _airflow(args: list[str], env: dict[str, str], log_file: Path) -> int:
    with log_file.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env={**os.environ, **env},
                              stdout=out, stderr=subprocess.STDOUT)
    return done.returncode


def run_dags(paths: DemoPaths, env: dict[str, str], start: datetime, end: datetime, t0: float) -> None:
    """Every demo DAG run in one Airflow process (:mod:`.demo_runner`), with a progress line per run."""
    steps: list[dict[str, Any]] = [
        {"label": f"obs_backfill oo-agg over {int((end - start).total_seconds() // 60)} one-minute windows",
         "dag_id": "obs_backfill", "logical_date": None,
         "conf": {"job": "oo-agg", "tenant": TENANT, "from": start.isoformat(), "to": end.isoformat()}},
        {"label": "obs_oo_agg for the last five minutes (a rerun of done windows: same rows)",
         "dag_id": "obs_oo_agg", "logical_date": end.isoformat(), "conf": None},
        {"label": "obs_backfill age-refresh for the last ten minutes", "dag_id": "obs_backfill",
         "logical_date": None, "conf": {"job": "age-refresh", "tenant": TENANT,
                                        "from": (end - timedelta(minutes=10)).isoformat(), "to": end.isoformat()}},
    ]
    if _include_folder() is not None:
        # Manual runs must end on their DAG's window boundary (15 minutes, one hour).
        iac_end, ansible_end = floor_time(end, timedelta(minutes=15)), floor_time(end, timedelta(hours=1))
        steps += [{"label": f"obs_topo_iac for [{iac_end - timedelta(minutes=15):%H:%M}, {iac_end:%H:%M})",
                   "dag_id": "obs_topo_iac", "logical_date": iac_end.isoformat(), "conf": None},
                  {"label": f"obs_topo_ansible for [{ansible_end - timedelta(hours=1):%H:%M}, {ansible_end:%H:%M})",
                   "dag_id": "obs_topo_ansible", "logical_date": ansible_end.isoformat(), "conf": None}]
    steps_file, results = paths.logs / "demo-steps.json", paths.logs / "demo-results.jsonl"
    steps_file.write_text(json.dumps(steps))
    results.write_text("")
    _progress(t0, f"airflow: {len(steps)} DAG runs in one process (dag.test), first: {steps[0]['label']}")
    log_file = paths.logs / "airflow.log"
    with log_file.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow_obs_provider.devkit.demo_runner", str(steps_file),
                                 str(results)], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        shown = 0
        while True:
            finished = proc.poll() is not None
            lines = results.read_text().splitlines()
            for line in lines[shown:]:
                step = json.loads(line)
                _progress(t0, f"airflow: {step['label']}: {step['state']} in {step['seconds']}s")
            shown = len(lines)
            if finished:
                break
            time.sleep(0.5)
    if proc.returncode != 0:
        _progress(t0, f"  a DAG run did not succeed (exit {proc.returncode}): see {log_file}")


def _rows(cur: Any, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cur.execute(query, params)
    return list(cur.fetchall())


def print_summary(pg_url: str) -> None:
    conn = connect(pg_url, autocommit=True, application_name="obs-etl demo summary")
    try:
        with conn.cursor() as cur:
            tid = _rows(cur, "SELECT id FROM dim_tenant WHERE code = %s", (TENANT,))[0][0]
            print("\n== Top call edges (service_call_5m, the hour) ==")
            print(f"{'caller':28} {'callee':34} {'calls':>7} {'rps':>7} {'err_rate':>8} {'p95 ms':>8}")
            for src, dst, calls, rps, err, p95 in _rows(cur, """
                SELECT s.urn, d.urn, sum(c.calls)::bigint, (sum(c.calls) / (count(*) * 300.0))::float8,
                       sum(c.errors)::float8 / nullif(sum(c.calls), 0), max(c.p95_ms)
                FROM service_call_5m c JOIN dim_resource s ON s.id = c.src_id JOIN dim_resource d ON d.id = c.dst_id
                WHERE c.tenant_id = %s GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10""", (tid,)):
                print(f"{src:28} {dst:34} {calls:7d} {rps:7.2f} {err or 0:8.3f} {p95 or 0:8.1f}")
            print("\n== Top log patterns (log_pattern_5m) ==")
            for count, errors, template in _rows(cur, """
                SELECT sum(p.count)::bigint, sum(p.count_error)::bigint, coalesce(t.template, p.fingerprint)
                FROM log_pattern_5m p LEFT JOIN log_pattern t ON t.tenant_id = p.tenant_id
                     AND t.fingerprint = p.fingerprint
                WHERE p.tenant_id = %s GROUP BY 3 ORDER BY 1 DESC LIMIT 10""", (tid,)):
                print(f"{count:7d} ({errors:5d} errors)  {template[:100]}")
            print("\n== metric_1m rows per minute ==")
            per_minute = _rows(cur, "SELECT bucket, count(*) FROM metric_1m WHERE tenant_id = %s "
                                    "GROUP BY 1 ORDER BY 1", (tid,))
            counts = [n for _, n in per_minute]
            if counts:
                print(f"{len(counts)} minutes, {sum(counts)} rows: min {min(counts)}, max {max(counts)} per minute")
                print("  " + "  ".join(f"{b:%H:%M}={n}" for b, n in per_minute[-10:]))
            else:
                print("no metric rows")
            print("\n== AGE graph obs_graph: CALLS edges ==")
            _print_graph(cur)
            print("\n== Topology edges valid now (topo_edge_time) ==")
            for source, edge_type, n in _rows(cur, """
                SELECT source, edge_type, count(*) FROM topo_edge_time
                WHERE tenant_id = %s AND upper_inf(valid) GROUP BY 1, 2 ORDER BY 1, 3 DESC""", (tid,)):
                print(f"{source:10} {edge_type:14} {n:5d}")
            for src, dst, edge_type in _rows(cur, """
                SELECT s.urn, d.urn, e.edge_type FROM topo_edge_time e JOIN dim_resource s ON s.id = e.src_id
                JOIN dim_resource d ON d.id = e.dst_id WHERE e.tenant_id = %s AND upper_inf(e.valid)
                ORDER BY e.source, e.edge_type, 1, 2 LIMIT 8""", (tid,)):
                print(f"  {src} -{edge_type}-> {dst}")
            print("\n== Ledger (etl_job_run) ==")
            for job, status, n, first, last in _rows(cur, """
                SELECT job, status, count(*), min(window_from), max(window_to) FROM etl_job_run
                WHERE tenant_id = %s GROUP BY 1, 2 ORDER BY 1, 2""", (tid,)):
                print(f"{job:14} {status:8} {n:4d} windows  [{first:%H:%M}, {last:%H:%M})")
            for job, w_from, error in _rows(cur, "SELECT job, window_from, error FROM etl_job_run "
                                                 "WHERE tenant_id = %s AND status = 'failed' LIMIT 5", (tid,)):
                print(f"  failed {job} {w_from:%H:%M}: {(error or '').splitlines()[0][:150] if error else ''}")
    finally:
        conn.close()


def _print_graph(cur: Any) -> None:
    from airflow_obs_provider.engine.age_graph import age_unavailable_reason, prepare_age_session

    reason = age_unavailable_reason(cur)
    if reason:
        print(f"not available: {reason}")
        return
    cur.execute("BEGIN")
    try:
        prepare_age_session(cur)
        cur.execute("""SELECT * FROM ag_catalog.cypher('obs_graph', $$
                         MATCH (a:Resource)-[e:CALLS]->(b:Resource)
                         RETURN a.urn, b.urn, e.rps, e.err_rate, e.p95 $$)
                       AS (src ag_catalog.agtype, dst ag_catalog.agtype, rps ag_catalog.agtype,
                           err_rate ag_catalog.agtype, p95 ag_catalog.agtype)""")
        edges = cur.fetchall()
    finally:
        cur.execute("ROLLBACK")
    if not edges:
        print("no edges")
        return

    def num(value: Any) -> float:  # agtype comes back as its text form
        return float(str(value)) if value is not None else 0.0

    for src, dst, rps, err, p95 in sorted(edges, key=lambda r: -num(r[2]))[:12]:
        print(f"({str(src).strip(chr(34))})-[:CALLS rps={num(rps):.2f} err_rate={num(err):.3f} "
              f"p95={num(p95):.1f}ms]->({str(dst).strip(chr(34))})")
    if len(edges) > 12:
        print(f"... {len(edges) - 12} more")


def cli_demo(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    minutes = int(getattr(args, "minutes", 60) or 60)
    if minutes < 10:
        raise ValueError("--minutes must be at least 10 (the graph refresh looks back ten minutes)")
    paths = DemoPaths(demo_root())
    _progress(t0, f"working folder {paths.root}")
    server = start_postgres(getattr(args, "pg_url", None))
    _progress(t0, f"Postgres at {redact_url(server)}")

    end = floor_time(datetime.now(UTC), timedelta(minutes=5))
    start = end - timedelta(minutes=minutes)
    if paths.data.exists():
        shutil.rmtree(paths.data)
    paths.logs.mkdir(parents=True, exist_ok=True)
    (paths.logs / "airflow.log").write_text("")  # this run's Airflow output only
    from airflow_obs_provider.devkit.gen import generate
    from airflow_obs_provider.engine.oo.storage import Storage

    result = generate(Storage.local(paths.data), start, end, seed=7)
    _progress(t0, f"generated [{start:%H:%M}, {end:%H:%M}) UTC: {sum(result.rows.values())} records in "
                  f"{len(result.files)} files under {paths.data}")

    pg_url = recreate_database(server)
    from airflow_obs_provider.engine.bootstrap import bootstrap

    report = bootstrap(pg_url)
    _progress(t0, f"schema version {report.schema_version} bootstrapped in database {DEMO_DB}")

    write_demo_config(paths, start)
    env = airflow_env(paths, pg_url)
    if paths.airflow_home.exists():
        shutil.rmtree(paths.airflow_home)  # a fresh metadata DB: the grid shows this demo's runs only
    paths.airflow_home.mkdir(parents=True)
    code = _airflow(["db", "migrate"], env, paths.logs / "airflow.log")
    if code:
        raise RuntimeError(f"airflow db migrate failed: see {paths.logs / 'airflow.log'}")
    _airflow(["connections", "add", "obs_postgres", "--conn-uri", env["AIRFLOW_CONN_OBS_POSTGRES"]],
             {k: v for k, v in env.items() if k != "AIRFLOW_CONN_OBS_POSTGRES"}, paths.logs / "airflow.log")
    _progress(t0, f"Airflow home {paths.airflow_home} migrated; connection obs_postgres added")

    run_dags(paths, env, start, end, t0)
    print_summary(pg_url)

    env_file = paths.root / "airflow.env"
    env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items() if k != "AIRFLOW_CONN_OBS_POSTGRES"))
    print("\n== Airflow UI ==")
    print("The runs above are in the demo's Airflow metadata DB. To browse them (DAG list, grid, task logs):")
    print(f"  . {env_file} && AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True "
          f"{sys.executable} -m airflow api-server --port 8080")
    print("  then open http://localhost:8080/dags/obs_backfill (and obs_oo_agg, obs_topo_iac, obs_topo_ansible)")
    print(f"Ledger health: obs-etl status --pg-url {redact_url(pg_url)}")
    _progress(t0, f"done in {time.monotonic() - t0:.0f}s (Airflow output: {paths.logs / 'airflow.log'})")
    return 0
