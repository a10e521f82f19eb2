"""Shared pieces of the end-to-end tests: the data range, generated data, config, clean reference runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from support.airflow_stack import AirflowRest, AirflowStack, create_database, drop_database, progress
from support.tables import snapshot

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "obs_oo_agg"
WINDOWS = 10
TENANTS = {"acme": 1, "globex": 2}  # tenant code -> generator seed
WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class DataRange:
    start: datetime
    end: datetime

    @staticmethod
    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def windows(self) -> list[tuple[datetime, datetime]]:
        out, t = [], self.start
        while t < self.end:
            out.append((t, t + WINDOW))
            t += WINDOW
        return out


def obs_etl(*args: str, timeout: float = 600) -> str:
    """Run the ``obs-etl`` CLI of this interpreter; fail with its output."""
    cmd = [sys.executable, "-m", "airflow_obs_provider.cli", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"obs-etl {' '.join(args[:2])} failed rc={out.returncode}:\n{out.stderr[-4000:]}")
    return out.stdout + out.stderr


def generate_data(root: Path, rng: DataRange, tenants: dict[str, int] = TENANTS) -> Path:
    """OO-layout data per tenant, 5 minutes wider than the range on each side (boundary calls)."""
    for code, seed in tenants.items():
        obs_etl("gen-oo-data", "--out", str(root / code), "--from", rng.iso(rng.start - timedelta(minutes=5)),
                "--to", rng.iso(rng.end + timedelta(minutes=5)), "--seed", str(seed))
    return root


def write_config(path: Path, data_root: Path, rng: DataRange, tenants: dict[str, int] = TENANTS,
                 **jobs: Any) -> Path:
    """The ETL YAML: start_date/end_date = the range, one local source per tenant (paths relative to it)."""
    cfg = {
        "start_date": rng.iso(rng.start),
        "end_date": rng.iso(rng.end),
        "tenants": [{"code": code, "source": {"kind": "local", "org": "default",
                                               "path": os.path.relpath(data_root / code, path.parent)}}
                    for code in tenants],
        # One-minute runs, one tenant per task: the shape the clear, backfill, StatsD and restart tests
        # assert on window by window. The batched defaults run through the scheduler in the Celery test
        # and in `obs-etl bench airflow`.
        "jobs": {"oo-agg": {"delay": "3m", "run_every": "1m", "tenants_per_task": 1, **jobs}},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def statsd_env(port: int) -> dict[str, str]:
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }


def clean_run(url: str, config: Path, start: datetime, end: datetime, tenants: dict[str, int] = TENANTS) -> None:
    """Bootstrap ``url`` and run ``obs-etl run oo-agg`` once per tenant over [start, end)."""
    obs_etl("bootstrap", "--pg-url", url)
    for code in tenants:
        obs_etl("run", "oo-agg", "--config", str(config), "--tenant", code,
                "--from", start.isoformat(), "--to", end.isoformat(), "--pg-url", url)


class CleanRuns:
    """One clean run per tenant over a range into a fresh database; snapshots cached by range."""

    def __init__(self, server_url: str, config: Path, tenants: dict[str, int] = TENANTS):
        self.server_url = server_url
        self.config = config
        self.tenants = tenants
        self.urls: list[str] = []
        self._cache: dict[tuple[datetime, datetime], dict[str, list[tuple[Any, ...]]]] = {}

    def snapshot(self, start: datetime, end: datetime) -> dict[str, list[tuple[Any, ...]]]:
        if (start, end) not in self._cache:
            url = create_database(self.server_url, "e2e_clean")
            self.urls.append(url)
            started = time.monotonic()
            clean_run(url, self.config, start, end, self.tenants)
            progress(f"clean obs-etl run over [{start:%H:%M}, {end:%H:%M}) took {time.monotonic() - started:.1f}s")
            self._cache[(start, end)] = snapshot(url)
        return self._cache[(start, end)]

    def close(self) -> None:
        for url in self.urls:
            drop_database(self.server_url, url)


@dataclass
class Airflow3:
    stack: AirflowStack
    rest: AirflowRest
    target_url: str
    config: Path


@dataclass
class CaughtUp:
    runs: list[dict[str, Any]]
    start: datetime
    end: datetime
    seconds: float


def parse_api_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_window(run: dict[str, Any]) -> tuple[datetime, datetime]:
    return parse_api_time(run["data_interval_start"]), parse_api_time(run["data_interval_end"])
