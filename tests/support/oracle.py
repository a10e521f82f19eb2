"""An independent, deliberately plain re-computation of ``metric_1m`` and ``service_call_5m``.

Pure Python over the raw Parquet files of an OpenObserve bucket folder (read with pyarrow,
file by file, as dict rows): no DuckDB, no SQL, no code shared with the product. It follows the
definitions written in the docstrings of ``engine/aggregate/metrics.py`` and ``calls.py`` with
the default URN mapping, so a disagreement means one of the two implementations is wrong.
"""

from __future__ import annotations

import ipaddress
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq

MINUTE = 60_000_000
BUCKET = 300_000_000
LOOKBACK = 5 * MINUTE
SLACK = 2 * MINUTE
Q = 0.95


# ------------------------------------------------------------------ raw records

def raw_rows(root: Path, org: str, stream_type: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of every stream of a type: {stream: [row, ...]} (non-Parquet files ignored)."""
    base = root / "files" / org / stream_type
    out: dict[str, list[dict[str, Any]]] = {}
    if not base.is_dir():
        return out
    for stream_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        rows: list[dict[str, Any]] = []
        for f in sorted(stream_dir.rglob("*.parquet")):
            rows.extend(pq.read_table(f).to_pylist())
        out[stream_dir.name] = rows
    return out


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _filled(v: Any) -> bool:
    return v is not None and str(v) != ""


def percentile_cont(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


# ------------------------------------------------------------------ resources

def resource_urn(row: dict[str, Any]) -> str:
    """Default mapping: service, else namespace/pod, else host, else unknown_service."""
    if _filled(row.get("service_name")):
        return f"urn:svc:{row['service_name']}".lower()
    if _filled(row.get("k8s_namespace_name")) and _filled(row.get("k8s_pod_name")):
        return f"urn:k8s:pod:{row['k8s_namespace_name']}/{row['k8s_pod_name']}".lower()
    if _filled(row.get("host_name")):
        return f"urn:host:{row['host_name']}".lower()
    return "urn:svc:unknown_service"


# ------------------------------------------------------------------ metric_1m

def _kind(name: str, rows: list[dict[str, Any]]) -> str:
    temporalities = {str(r.get("aggregation_temporality") or "").upper() for r in rows}
    monotonic = {str(r.get("is_monotonic") or "").lower() for r in rows}
    if name.endswith("_bucket") and any(r.get("le") is not None for r in rows):
        return "histogram"
    if any(t.endswith("DELTA") for t in temporalities):
        return "delta"
    if "false" in monotonic and "true" not in monotonic:
        return "gauge"
    if "true" in monotonic or any(t.endswith("CUMULATIVE") for t in temporalities):
        return "counter"
    if name.endswith(("_total", "_count", "_sum")):
        return "counter"
    return "gauge"


def _bound(le: Any) -> float | None:
    s = str(le).strip().lower()
    if s in ("inf", "+inf"):
        return math.inf
    try:
        return float(s)
    except ValueError:
        return None


def _increases(points: list[tuple[int, float]], start: int, end: int) -> list[tuple[int, float]]:
    """(minute, increase) for each sample of one series in [start, end), with the reset rule."""
    points = sorted(points)
    out = []
    for i, (ts, value) in enumerate(points):
        if not start <= ts < end:
            continue
        minute = ts - ts % MINUTE
        if i == 0 or points[i - 1][0] < minute - LOOKBACK:
            inc = 0.0
        else:
            prev = points[i - 1][1]
            inc = value - prev if value >= prev else value
        out.append((minute, inc))
    return out


def _histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return None
    fixed = []
    running = -math.inf
    for bound, count in buckets:  # Prometheus makes cumulative counts monotonic
        running = max(running, count)
        fixed.append((bound, running))
    total = fixed[-1][1]
    if total <= 0:
        return None
    rank = q * total
    b = next(i for i, (_, c) in enumerate(fixed) if c >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start = 0.0 if b == 0 else fixed[b - 1][0]
    prev_count = 0.0 if b == 0 else fixed[b - 1][1]
    end, count = fixed[b]
    return start + (end - start) * ((rank - prev_count) / (count - prev_count))


def metric_rows(root: Path, start: int, end: int, org: str = "default") -> dict[tuple[int, str, str], dict[str, Any]]:
    """{(bucket µs, urn, metric): {kind, avg, max, p95, min, count, sum}} for minutes in [start, end)."""
    streams = raw_rows(root, org, "metrics")
    out: dict[tuple[int, str, str], dict[str, Any]] = {}
    counter_sums: dict[tuple[int, str, str], float] = {}
    histograms = []
    for name, all_rows in streams.items():
        # a window classifies a stream from what it read: the lookback plus the window
        rows = [r for r in all_rows if r.get("value") is not None and not math.isnan(float(r["value"]))]
        kind = _kind(name, [r for r in all_rows if start - LOOKBACK <= r["_timestamp"] < end])
        if kind in ("gauge", "delta"):
            groups: dict[tuple[int, str], list[float]] = defaultdict(list)
            for r in rows:
                if start <= r["_timestamp"] < end:
                    groups[(r["_timestamp"] - r["_timestamp"] % MINUTE, resource_urn(r))].append(float(r["value"]))
            for (minute, urn), vals in groups.items():
                total = math.fsum(vals)
                out[(minute, urn, name)] = {"kind": "counter" if kind == "delta" else "gauge",
                                            "avg": total / len(vals), "max": max(vals), "p95": percentile_cont(vals, Q),
                                            "min": min(vals), "count": len(vals), "sum": total}
            continue
        series: dict[tuple[str, str, str | None], list[tuple[int, float]]] = defaultdict(list)
        for r in rows:
            urn = resource_urn(r)
            sid = _text(r.get("__hash__")) or f"{urn}|{_text(r.get('le')) or ''}"
            series[(urn, sid, _text(r.get("le")))].append((r["_timestamp"], float(r["value"])))
        if kind == "counter":
            per_series: dict[tuple[int, str], list[tuple[float, int]]] = defaultdict(list)
            for (urn, _sid, _le), pts in series.items():
                by_minute: dict[int, list[float]] = defaultdict(list)
                for minute, inc in _increases(pts, start, end):
                    by_minute[minute].append(inc)
                for minute, incs in by_minute.items():
                    per_series[(minute, urn)].append((math.fsum(incs), len(incs)))
            for (minute, urn), items in per_series.items():
                incs = [i for i, _ in items]
                total = math.fsum(incs)
                n = sum(c for _, c in items)
                out[(minute, urn, name)] = {"kind": "counter", "avg": total / n, "max": max(incs),
                                            "p95": percentile_cont(incs, Q), "min": min(incs), "count": n,
                                            "sum": total}
                counter_sums[(minute, urn, name)] = total
        else:
            per_bound: dict[tuple[int, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
            for (urn, _sid, le), pts in series.items():
                bound = _bound(le)
                if bound is None:
                    continue
                for minute, inc in _increases(pts, start, end):
                    per_bound[(minute, urn)][bound] += inc
            histograms.append((name, per_bound))
    names = set(streams)
    for name, per_bound in histograms:
        base = name[: -len("_bucket")]
        metric = base if base not in names else name
        for (minute, urn), bounds in per_bound.items():
            if math.inf not in bounds:
                continue
            count = max(bounds.values())  # the +Inf bucket once counts are made monotonic
            s = counter_sums.get((minute, urn, base + "_sum"))
            out[(minute, urn, metric)] = {
                "kind": "histogram", "avg": (s / count) if (s is not None and count > 0) else None, "max": None,
                "p95": _histogram_quantile(Q, list(bounds.items())) if count > 0 else None, "min": None,
                "count": int(count), "sum": s,
            }
    return out


# ------------------------------------------------------------------ service_call_5m

_KINDS = {"1": 1, "internal": 1, "span_kind_internal": 1, "2": 2, "server": 2, "span_kind_server": 2,
          "3": 3, "client": 3, "span_kind_client": 3, "4": 4, "producer": 4, "span_kind_producer": 4,
          "5": 5, "consumer": 5, "span_kind_consumer": 5}


def _span_kind(v: Any) -> int:
    return _KINDS.get(str(v or "").strip().lower(), 0)


def _not_ip(host: str | None) -> str | None:
    if not host:
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        return host.lower()


def _address_host(v: Any) -> str | None:
    """``host[:port]`` -> host; None for empty values, IP literals and socket paths."""
    if not _filled(v):
        return None
    s = str(v).strip()
    if "/" in s:
        return None
    try:
        ipaddress.ip_address(s.strip("[]"))
        return None
    except ValueError:
        pass
    head, sep, port = s.rpartition(":")
    if sep and port.isdigit() and head:
        s = head
    return _not_ip(s)


def _url_host(v: Any) -> str | None:
    if not _filled(v) or "://" not in str(v):
        return None
    netloc = urlsplit(str(v)).netloc.rpartition("@")[2]
    if netloc.startswith("["):
        return None
    return _not_ip(netloc.split(":")[0])


def _newest(s: dict[str, Any], *names: str) -> str | None:
    """The first attribute (OpenTelemetry's dotted name) the flattened span row holds, newest first."""
    for name in names:
        v = s.get(name.replace(".", "_"))
        if _filled(v):
            return str(v)
    return None


def peer_urn(s: dict[str, Any]) -> str | None:
    """The virtual node a client/producer span calls, as the README's precedence table says."""
    host = (_address_host(s.get("server_address")) or _address_host(s.get("net_peer_name"))
            or _address_host(s.get("network_peer_address")) or _url_host(s.get("url_full"))
            or _url_host(s.get("http_url")) or _url_host(s.get("url")))
    db_system, db_name = _newest(s, "db.system.name", "db.system"), _newest(s, "db.namespace", "db.name")
    if db_system or db_name:
        return f"urn:db:{(db_system or 'unknown').lower()}:{(db_name or host or db_system or '').lower()}"
    q_system = _newest(s, "messaging.system")
    q_dest = _newest(s, "messaging.destination.name", "messaging.destination")
    if q_system or q_dest:
        return f"urn:queue:{(q_system or 'unknown').lower()}:{(q_dest or host or q_system or '').lower()}"
    peer = _newest(s, "service.peer.name", "peer.service") or _newest(s, "rpc.service")
    if peer:
        return f"urn:svc:{peer.lower()}"
    if host:
        return f"urn:ext:{host}"
    rpc_system = _newest(s, "rpc.system.name", "rpc.system")
    return f"urn:ext:{rpc_system.lower()}" if rpc_system else None


def call_edges(spans: Iterable[dict[str, Any]], bucket_start: int, bucket_end: int,
               fallback: str = "urn:svc:unknown_service") -> list[tuple[int, str, str, bool, float | None]]:
    """(caller ts, src, dst, error, latency ms) for callers in [bucket_start, bucket_end)."""
    spans = [s for s in spans if _filled(s.get("trace_id")) and _filled(s.get("span_id"))]
    children: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        if _filled(s.get("reference_parent_span_id")):
            children[(s["trace_id"], s["reference_parent_span_id"])].append(s)

    def node(s: dict[str, Any]) -> str:
        """A span's resource: its service, or the fallback when it names none."""
        return f"urn:svc:{s['service_name']}".lower() if _filled(s.get("service_name")) else fallback

    def err(s: dict[str, Any]) -> bool:
        return str(s.get("span_status") or "").upper() == "ERROR"

    def ms(s: dict[str, Any]) -> float | None:
        return None if s.get("duration") is None else float(s["duration"]) / 1000.0

    edges = []
    for p in spans:
        if not bucket_start <= p["_timestamp"] < bucket_end:
            continue
        pk, src = _span_kind(p.get("span_kind")), node(p)
        partnered = False
        for c in children.get((p["trace_id"], p["span_id"]), []):
            ck, dst = _span_kind(c.get("span_kind")), node(c)
            if ck in (2, 5) or dst != src:
                partnered = True
            if src == dst:
                continue
            if (pk, ck) in ((3, 2), (4, 5)) or pk in (0, 1) or ck in (0, 1):
                edges.append((p["_timestamp"], src, dst, err(p) or err(c), ms(p) if pk in (3, 4) else ms(c)))
        if pk in (3, 4):
            peer = peer_urn(p)
            if peer and peer != src and (not partnered or (pk == 4 and peer.startswith("urn:queue:"))):
                edges.append((p["_timestamp"], src, peer, err(p), ms(p)))
    return edges


def call_rows(root: Path, bucket_starts: Iterable[int], org: str = "default") -> dict[tuple[int, str, str], dict[str, Any]]:
    """{(bucket µs, src urn, dst urn): {calls, errors, rps, err_rate, p50_ms, p95_ms}}."""
    all_spans = [s for rows in raw_rows(root, org, "traces").values() for s in rows]
    out = {}
    for b in bucket_starts:
        window = [s for s in all_spans if b - SLACK <= s["_timestamp"] < b + BUCKET + SLACK]
        groups: dict[tuple[str, str], list[tuple[bool, float | None]]] = defaultdict(list)
        for _ts, src, dst, e, lat in call_edges(window, b, b + BUCKET):
            groups[(src, dst)].append((e, lat))
        for (src, dst), items in groups.items():
            calls = len(items)
            errors = sum(1 for e, _ in items if e)
            lats = [lat for _, lat in items if lat is not None]
            out[(b, src, dst)] = {"calls": calls, "errors": errors, "rps": calls / 300.0, "err_rate": errors / calls,
                                  "p50_ms": percentile_cont(lats, 0.5), "p95_ms": percentile_cont(lats, Q)}
    return out
