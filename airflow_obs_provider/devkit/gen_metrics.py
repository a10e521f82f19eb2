"""The metrics ``obs-etl gen-oo-data`` writes: gauges, monotonic counters with resets and cumulative
histograms per pod, scraped every ``SCRAPE_S`` seconds (one stream per metric name)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_obs_provider.devkit.gen_signals import (
    LE_BOUNDS,
    NAMESPACE,
    SCRAPE_S,
    SERVICES,
    SERVING,
    US_MIN,
    _host_of,
    _rng,
    _stable_u64,
    pods_of,
)


@dataclass(frozen=True)
class Series:
    stream: str
    labels: dict[str, str]
    kind: str  # gauge | counter | bucket | count | sum
    pod: str
    frac: float = 1.0  # share of a histogram's observations at or below ``le``


def metric_series(scale: int) -> list[Series]:
    out: list[Series] = []
    for svc in SERVICES:
        for pod in pods_of(svc, scale):
            base = {"service_name": svc, "k8s_pod_name": pod, "k8s_namespace_name": NAMESPACE, "host_name": _host_of(pod)}
            out.append(Series("container_cpu_usage_ratio", base, "gauge", pod))
            out.append(Series("container_memory_working_set_bytes", base, "gauge", pod))
            if svc not in SERVING:
                continue
            for code in ("200", "500"):
                out.append(Series("http_server_requests_total", {**base, "status_code": code}, "counter", pod,
                                  0.97 if code == "200" else 0.03))
            cdf = np.cumsum([0.25, 0.35, 0.2, 0.15, 0.04, 0.01])
            for le, f in zip(LE_BOUNDS, cdf, strict=True):
                out.append(Series("http_server_duration_seconds_bucket", {**base, "le": le}, "bucket", pod,
                                  1.0 if le == "inf" else float(f)))
            out.append(Series("http_server_duration_seconds_count", base, "count", pod))
            out.append(Series("http_server_duration_seconds_sum", base, "sum", pod))
    return out


def _pod_clock(pod: str) -> tuple[float, float, float]:
    """Per pod: requests/s, restart period (20-80 min) and phase (s): counters reset on restarts."""
    h = _stable_u64("pod", pod)
    return 5 + h % 40, 1200 + (h >> 8) % 3600, float((h >> 24) % 7200)


def _last_restart(t_s: np.ndarray, period: float, phase: float) -> np.ndarray:
    return phase + np.floor((t_s - phase) / period) * period  # type: ignore[no-any-return]


def _cumulative(t_s: np.ndarray, rate: float) -> np.ndarray:
    """Requests served since the epoch: monotone (the wiggle's slope stays below the rate)."""
    return rate * t_s + (rate * 60 / np.pi / 4) * np.sin(t_s * np.pi / 600)  # type: ignore[no-any-return]


def gen_metrics(seed: int, minute_us: int, scale: int) -> tuple[dict[str, pa.Table], pa.Table]:
    rng = _rng(seed, 4, minute_us // US_MIN)
    by_stream: dict[str, list[pa.Table]] = defaultdict(list)
    resets: dict[str, list[Any]] = defaultdict(list)
    for s in metric_series(scale):
        sid = _stable_u64(s.stream, sorted(s.labels.items()))
        phase_us = _stable_u64("scrape", s.pod) % (SCRAPE_S * 1_000_000)  # one scrape time per pod
        ts = minute_us + phase_us + np.arange(60 // SCRAPE_S, dtype=np.int64) * SCRAPE_S * 1_000_000
        t_s = ts / 1e6
        rate, period, phase = _pod_clock(s.pod)
        restart = _last_restart(t_s, period, phase)
        if s.kind == "gauge":
            if s.stream.startswith("container_cpu"):
                value = 0.2 + 0.15 * np.sin(t_s / 900 + sid % 7) + rng.normal(0, 0.03, ts.size)
            else:
                value = 2.5e8 + 1e8 * ((t_s - restart) / period) + rng.normal(0, 2e6, ts.size)
        else:
            served = np.floor(_cumulative(t_s, rate) - _cumulative(restart, rate))
            value = np.floor(served * s.frac) if s.kind in ("counter", "bucket") else served
            if s.kind == "sum":
                value = served * 0.042
            # reset points inside this minute, for the truth sidecar
            prev = _last_restart(t_s - SCRAPE_S, period, phase)
            for t_us, r_new, r_old in zip(ts.tolist(), restart.tolist(), prev.tolist(), strict=True):
                if r_new != r_old and s.kind == "counter":
                    resets["stream"].append(s.stream)
                    resets["__hash__"].append(sid)
                    resets["k8s_pod_name"].append(s.pod)
                    resets["status_code"].append(s.labels.get("status_code"))
                    resets["first_ts_after_reset"].append(t_us)
                    resets["reset_at_us"].append(int(r_new * 1e6))
        n = ts.size
        cols: dict[str, Any] = {
            "_timestamp": pa.array(ts, pa.int64()),
            "__name__": [s.stream] * n,
            "__hash__": pa.array([sid] * n, pa.uint64()),
            "value": pa.array(value.astype(np.float64)),
        }
        for k, v in s.labels.items():
            cols[k] = [v] * n
        if s.kind != "gauge":
            cols["aggregation_temporality"] = ["AGGREGATION_TEMPORALITY_CUMULATIVE"] * n
            cols["start_time"] = [str(int(r * 1e9)) for r in restart.tolist()]
        if s.kind == "counter":
            cols["is_monotonic"] = ["true"] * n
        cols["flag"] = pa.array([0] * n, pa.int64())
        cols["__ingester"] = pa.array([sid % 2] * n, pa.int8())
        by_stream[s.stream].append(pa.table(cols))
    tables = {k: pa.concat_tables(v, promote_options="permissive") for k, v in by_stream.items()}
    reset_schema = pa.schema([("stream", pa.string()), ("__hash__", pa.uint64()), ("k8s_pod_name", pa.string()),
                              ("status_code", pa.string()), ("first_ts_after_reset", pa.int64()),
                              ("reset_at_us", pa.int64())])
    return tables, pa.table({f.name: pa.array(resets.get(f.name, []), f.type) for f in reset_schema},
                            schema=reset_schema)


# --------------------------------------------------------------------------------------------
# writing
