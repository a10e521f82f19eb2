"""A real Airflow on this machine for end-to-end tests and ``obs-etl bench airflow``: metadata DB, processes,
REST client.

``AirflowStack`` makes an ``AIRFLOW_HOME``, a fresh metadata database on a running
Postgres server (LocalExecutor needs a real database), runs ``airflow db migrate`` and
starts the Airflow 3 processes (api-server, scheduler, dag-processor, triggerer) in
their own process groups with their output in log files. With ``executor="CeleryExecutor"``
the broker is a Redis URL, the result backend the metadata database, and
``start_celery_worker`` adds ``airflow celery worker`` processes. ``stop()`` always ends every
process group it started and drops the metadata database.

``AirflowRest`` talks to the public REST API with a JWT from ``POST /auth/token``
(SimpleAuthManager with a known user and password) and has bounded, chatty waits.

The same class drives an Airflow 2.11 interpreter for the synchronous CLI paths
(``airflow dags backfill``) via :meth:`AirflowStack.cli`, without starting processes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from airflow_obs_provider.devkit.databases import create_database, drop_database, with_database
from airflow_obs_provider.devkit.worker_hostname import WORKER_HOSTNAME_VAR

__all__ = ["ADMIN_USER", "TERMINAL_RUN_STATES", "AirflowRest", "AirflowStack", "airflow_conn_uri", "create_database",
           "drop_database", "free_port", "progress", "sqlalchemy_url", "wait_for", "with_database"]

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
ADMIN_USER = "admin"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlalchemy_url(libpq_url: str) -> str:
    return "postgresql+psycopg2://" + libpq_url.split("://", 1)[1]


def airflow_conn_uri(libpq_url: str) -> str:
    """An ``AIRFLOW_CONN_*`` URI for a Postgres database (Airflow's scheme is ``postgres``)."""
    return "postgres://" + libpq_url.split("://", 1)[1]


def progress(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 2.0,
             describe: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it returns a truthy value; on timeout raise naming ``what`` (and ``describe()``)."""
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        got = check()
        if got:
            return got
        now = time.monotonic()
        if now >= deadline:
            detail = describe() if describe else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}. {detail}")
        if describe and now - last_report >= 15:
            progress(f"waiting for {what}: {describe()}")
            last_report = now
        time.sleep(interval)


@dataclass
class AirflowStack:
    """One Airflow installation (home + metadata DB + processes) owned by a test session or module."""

    root: Path  # a fresh temporary folder: AIRFLOW_HOME and process logs go below it
    dags_folder: Path
    pg_server_url: str  # a Postgres server where the metadata database is created
    python: str = sys.executable  # the interpreter whose Airflow runs (3.x venv or the 2.11 venv)
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    name: str = "af"
    executor: str = "LocalExecutor"  # or "CeleryExecutor" (then celery_broker_url is required)
    celery_broker_url: str | None = None  # redis://...; the result backend is the metadata database

    home: Path = field(init=False)
    logs: Path = field(init=False)
    port: int = field(init=False, default=0)
    meta_url: str | None = field(init=False, default=None)
    password: str = field(init=False, default_factory=lambda: secrets.token_hex(8))
    _procs: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict)
    _log_files: list[Any] = field(init=False, default_factory=list)
    # Several test sessions may share one Redis: every key and channel of this stack's broker carries it.
    _broker_key_prefix: str = field(init=False, default_factory=lambda: f"obs-e2e-{secrets.token_hex(4)}:")

    def __post_init__(self) -> None:
        if self.executor == "CeleryExecutor" and not self.celery_broker_url:
            raise ValueError("CeleryExecutor needs celery_broker_url (e.g. the dev stack's REDIS_URL)")
        self.home = self.root / "airflow_home"
        self.logs = self.root / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- environment -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The process environment: the caller's without any AIRFLOW* leftovers, plus this stack's."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("AIRFLOW") and not k.startswith("PYTEST")}
        if not self.port:
            self.port = free_port()
        pw_file = self.home / "simple_auth_manager_passwords.json"
        if not pw_file.exists():
            pw_file.write_text(json.dumps({ADMIN_USER: self.password}))
        jwt_secret_file = self.home / "jwt_secret"
        if not jwt_secret_file.exists():
            jwt_secret_file.write_text(secrets.token_hex(32))
        env = {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": jwt_secret_file.read_text(),
            "AIRFLOW__WEBSERVER__SECRET_KEY": jwt_secret_file.read_text(),
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret_file.read_text(),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "120",
            "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "120",
            "PYTHONUNBUFFERED": "1",
        }
        if self.meta_url:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sqlalchemy_url(self.meta_url)
        if self.executor == "CeleryExecutor":
            env.update(self._celery_env())
        env.update(self.env_overrides)
        return env

    def _celery_env(self) -> dict[str, str]:
        assert self.celery_broker_url
        env = {
            "AIRFLOW__CELERY__BROKER_URL": self.celery_broker_url,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self._broker_key_prefix,
        }
        if self.meta_url:
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + sqlalchemy_url(self.meta_url)
        return env

    # -- lifecycle ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """A fresh metadata database on the Postgres server, migrated by this Airflow."""
        if self.meta_url is None:
            self.meta_url = create_database(self.pg_server_url, f"{self.name}_meta")
        progress(f"{self.name}: airflow db migrate ({self.python})")
        self.cli(["db", "migrate"], timeout=600)

    def cli(self, args: Sequence[str], timeout: float = 300, check: bool = True,
            extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` with this stack's environment; output goes to a log file and the result."""
        cmd = [self.python, "-m", "airflow", *args]
        env = {**self.env(), **(extra_env or {})}
        started = time.monotonic()
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                                 start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"`airflow {' '.join(args)}` did not finish within {timeout:.0f}s") from exc
        log_name = re.sub(r"[^a-z0-9]+", "_", "_".join(args[:2]).lower())
        with open(self.logs / f"cli_{log_name}.log", "a") as fh:
            fh.write(f"$ airflow {' '.join(args)}  ({time.monotonic() - started:.1f}s, rc={out.returncode})\n")
            fh.write(out.stdout + "\n" + out.stderr + "\n")
        if check and out.returncode != 0:
            raise RuntimeError(f"`airflow {' '.join(args)}` failed with rc={out.returncode}:\n"
                               f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
        return out

    def start(self, components: Iterable[str] = ("api-server", "scheduler", "dag-processor", "triggerer"),
              timeout: float = 180) -> AirflowRest:
        """Migrate, start the processes and wait until the API reports every component healthy."""
        self.migrate()
        env = self.env()
        for comp in components:
            args = [comp]
            if comp == "api-server":
                args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            self._spawn(comp, args, env)
        rest = AirflowRest(self.base_url, ADMIN_USER, self.password, stack=self)
        wanted = {"api-server": None, "scheduler": "scheduler", "dag-processor": "dag_processor",
                  "triggerer": "triggerer"}
        keys = [wanted[c] for c in components if wanted.get(c)]
        wait_for(f"{self.name} to report {', '.join(components)} healthy",
                 lambda: self._healthy(rest, keys), timeout, interval=2, describe=self._describe_health)
        rest.login()
        progress(f"{self.name}: healthy on {self.base_url}")
        return rest

    def _spawn(self, comp: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        """Start ``airflow ARGS`` as ``comp``, its output in ``logs/COMP.log``."""
        log = open(self.logs / f"{comp}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log_files.append(log)
        # Own process group: stop() ends the component and every child (executor workers, tasks).
        self._procs[comp] = subprocess.Popen([self.python, "-m", "airflow", *args], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
        progress(f"{self.name}: started {comp} (pid {self._procs[comp].pid})")

    def start_celery_worker(self, name: str, concurrency: int = 2, timeout: float = 120) -> None:
        """An ``airflow celery worker`` (Celery node ``NAME@host``) whose task instances report ``name`` as
        ``task_instance.hostname``: ``[core] hostname_callable`` is
        ``airflow_obs_provider.devkit.worker_hostname.worker_hostname`` in its environment. Its log is ``logs/celery-worker-NAME.log``; ``stop()`` ends it."""
        if self.executor != "CeleryExecutor":
            raise ValueError(f"{self.name} runs the {self.executor}, not the CeleryExecutor")
        comp = f"celery-worker-{name}"
        env = {
            **self.env(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_obs_provider.devkit.worker_hostname.worker_hostname",
            WORKER_HOSTNAME_VAR: name,
        }
        # Task logs are files under this stack's log folder, read by the api-server from disk: two workers
        # on one machine need no log servers (which would both want worker_log_server_port).
        self._spawn(comp, ["celery", "worker", "--concurrency", str(concurrency), "--celery-hostname",
                           f"{name}@%h", "--skip-serve-logs"], env)
        wait_for(f"{self.name}: celery worker {name} to be ready", lambda: self._worker_ready(comp, name),
                 timeout, interval=1, describe=lambda: self.log_tail(comp, 5))
        progress(f"{self.name}: celery worker {name} ready (concurrency {concurrency})")

    def _worker_ready(self, comp: str, name: str) -> bool:
        self.check_alive()
        log = (self.logs / f"{comp}.log").read_text(errors="replace")
        return re.search(rf"\b{re.escape(name)}@\S+ ready\.", log) is not None  # Celery's "NODE ready."

    def _healthy(self, rest: AirflowRest, keys: list[str | None]) -> bool:
        self.check_alive()
        try:
            health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all((health.get(k) or {}).get("status") == "healthy" for k in keys if k)

    def _describe_health(self) -> str:
        try:
            return "health=" + requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).text[:400]
        except requests.RequestException as exc:
            return f"api-server not answering ({type(exc).__name__})"

    def check_alive(self) -> None:
        """Raise naming the component (with its log tail) if one of the processes has exited."""
        for comp, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name}: airflow {comp} exited with rc={proc.returncode}; "
                                   f"log tail:\n{self.log_tail(comp)}")

    def log_tail(self, comp: str, lines: int = 40) -> str:
        path = self.logs / f"{comp}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def task_logs(self, dag_id: str) -> list[Path]:
        return sorted((self.logs / "tasks").glob(f"dag_id={dag_id}/**/*.log"))

    def stop(self) -> None:
        """End every process group this stack started (TERM, then KILL), then drop the metadata DB."""
        for proc in list(self._procs.values()):
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for comp, proc in list(self._procs.items()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                progress(f"{self.name}: {comp} ignored SIGTERM; killing its process group")
            _kill_group(proc, signal.SIGKILL)  # children (workers, task processes) may outlive the leader
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
        for fh in self._log_files:
            fh.close()
        self._log_files.clear()
        if self.meta_url:
            try:
                drop_database(self.pg_server_url, self.meta_url)
            except Exception as exc:  # the server may be gone at the end of a failed session
                progress(f"{self.name}: could not drop the metadata DB: {exc}")
            self.meta_url = None


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class AirflowRest:
    """The Airflow 3 public REST API (``/api/v2``) with a JWT; waits are bounded and print progress."""

    def __init__(self, base_url: str, username: str, password: str, stack: AirflowStack | None = None):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.stack = stack
        self.session = requests.Session()
        self.token: str | None = None

    def login(self) -> str:
        resp = requests.post(f"{self.base_url}/auth/token",
                             json={"username": self.username, "password": self.password}, timeout=30)
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"POST /auth/token refused: {resp.status_code} {resp.text[:300]}")
        self.token = resp.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        return self.token

    def request(self, method: str, path: str, ok: Sequence[int] = (200, 201), **kwargs: Any) -> Any:
        resp = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if resp.status_code == 401 and self.token:  # JWTs expire; log in again once
            self.login()
            resp = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if resp.status_code not in ok:
            raise RuntimeError(f"{method} /api/v2{path} -> {resp.status_code}: {resp.text[:1000]}")
        return resp.json() if resp.content else None

    # -- DAGs -------------------------------------------------------------------------------
    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/importErrors").get("import_errors", []))

    def wait_dag(self, dag_id: str, timeout: float = 180) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; import errors end the wait at once."""
        def found() -> dict[str, Any] | None:
            if self.stack:
                self.stack.check_alive()
            errors = self.import_errors()
            if errors:
                raise AssertionError(f"import errors while waiting for {dag_id}: "
                                     + "; ".join(f"{e.get('filename')}: {e.get('stack_trace', '')[-800:]}"
                                                 for e in errors))
            resp = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30)
            return resp.json() if resp.status_code == 200 else None

        return wait_for(f"DAG {dag_id} to be parsed", found, timeout, interval=2,
                        describe=lambda: "not in /api/v2/dags yet")  # type: ignore[no-any-return]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # -- runs -------------------------------------------------------------------------------
    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.request("GET", f"/dags/{dag_id}/dagRuns",
                                params={"limit": 100, "offset": offset, "order_by": "logical_date"})
            runs.extend(page["dag_runs"])
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        page = self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                            params={"limit": 1000})
        return list(page["task_instances"])

    def wait_runs(self, dag_id: str, expected: int, timeout: float, *, states: frozenset[str] = TERMINAL_RUN_STATES,
                  select: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[dict[str, Any]]:
        """Wait until at least ``expected`` selected runs exist and all selected runs are in ``states``."""
        def summary() -> str:
            runs = [r for r in self.dag_runs(dag_id) if select(r)]
            counts: dict[str, int] = {}
            for r in runs:
                counts[r["state"]] = counts.get(r["state"], 0) + 1
            return f"{dag_id}: {len(runs)}/{expected} runs, states {counts}"

        def done() -> list[dict[str, Any]] | None:
            if self.stack:
                self.stack.check_alive()
            runs = [r for r in self.dag_runs(dag_id) if select(r)]
            if len(runs) >= expected and all(r["state"] in states for r in runs):
                return runs
            return None

        runs = wait_for(f"{expected} runs of {dag_id} to reach {sorted(states)}", done, timeout, interval=3,
                        describe=summary)
        progress(summary())
        return runs  # type: ignore[no-any-return]

    def wait_run(self, dag_id: str, run_id: str, timeout: float,
                 states: frozenset[str] = TERMINAL_RUN_STATES) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            return self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")  # type: ignore[no-any-return]

        return wait_for(f"run {run_id} of {dag_id} to reach {sorted(states)}",  # type: ignore[no-any-return]
                        lambda: (r if (r := get())["state"] in states else None), timeout, interval=3,
                        describe=lambda: f"state={get()['state']}")

    def clear_task_instances(self, dag_id: str, *, run_id: str | None = None, start_date: str | None = None,
                             end_date: str | None = None, task_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Clear for real: dry_run and only_failed default to true in the API (a no-op), so both are false."""
        body: dict[str, Any] = {"dry_run": False, "only_failed": False, "reset_dag_runs": True}
        if run_id:
            body["dag_run_id"] = run_id
        if start_date:
            body["start_date"] = start_date
        if end_date:
            body["end_date"] = end_date
        if task_ids:
            body["task_ids"] = task_ids
        got = self.request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)
        return list(got.get("task_instances", []))

    def create_backfill(self, dag_id: str, from_date: str, to_date: str,
                        reprocess_behavior: str = "completed", max_active_runs: int = 4) -> dict[str, Any]:
        return self.request("POST", "/backfills", json={  # type: ignore[no-any-return]
            "dag_id": dag_id, "from_date": from_date, "to_date": to_date,
            "reprocess_behavior": reprocess_behavior, "max_active_runs": max_active_runs})

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        return self.request("GET", f"/backfills/{backfill_id}")  # type: ignore[no-any-return]
