"""``obs-etl gen-oo-data``: realistic, deterministic demo/test data in OpenObserve's bucket layout.

What it writes (see the OO contract page): traces of services calling services over HTTP and
gRPC (client "3" / server "2" spans in different services sharing trace ids and parent links),
databases, a queue (producer "4" / consumer "5"), external hosts, a cross-service parent/child
with missing kinds, some ERROR statuses; metrics (one stream per name: gauges, monotonic counters
with resets, cumulative histograms with string ``le`` up to ``"inf"`` plus ``_count``/``_sum``);
logs from varied templates and severities (text and numeric), some carrying secrets.

Each minute is generated from its own random stream ``(seed, minute)``, so a minute's data is the
same whatever range it is generated in. Files: per stream and hour, one zstd Parquet file per
(ingester, 10-minute chunk) with footer ``min_ts``/``max_ts``/``records``/``original_size``;
ingesters differ in schema (drift: extra columns, a column with another type).

Ground truth lands in ``_truth/`` beside ``files/``: ``manifest.json``, per-hour
``service_edges-*.parquet`` (caller start µs, src/dst URNs, error, latency), ``log_lines-*.parquet``
(true template id per line) and ``counter_resets-*.parquet``.

With ``file_list_url`` (``postgresql://...`` or ``sqlite:///path``) OO's ``file_list`` table is
written too; ``compaction=True`` then also writes each hour merged into one file and marks the
small files ``deleted`` while leaving them in the bucket, as OO's compactor does for ~2 h.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_obs_provider.engine.oo.layout import file_list_stream, hour_bounds_us, hour_prefix
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.window import floor_time, from_us, parse_time, to_us

log = logging.getLogger(__name__)

PROFILES = {"seed": 1, "x10": 10, "x100": 100}
LOGS_PER_MIN, SPANS_PER_MIN = 5000, 1000  # per scale unit; metrics ~500 points/min come from the pod count
SCRAPE_S = 15
CHUNK_US = 600_000_000  # one file per ingester per 10 minutes
ROW_GROUP = 8192
US_MIN = 60_000_000

NAMESPACE = "shop"
SERVICES = ("frontend", "checkout", "payment", "shipping", "catalog", "recommendation", "inventory",
            "inventory-sync")
SERVING = ("frontend", "checkout", "payment", "catalog", "inventory")  # expose HTTP server metrics
LE_BOUNDS = ("0.01", "0.05", "0.1", "0.5", "1", "inf")


# --------------------------------------------------------------------------------------------
# helpers


def _rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, *parts])


def _stable_u64(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _hex(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    return [bytes(r).hex() for r in raw]


@functools.cache
def pods_of(service: str, scale: int) -> list[str]:
    h = hashlib.blake2b(service.encode(), digest_size=4).hexdigest()[:5]
    return [f"{service}-{h}-{i:03d}" for i in range(2 * scale)]


@functools.cache
def _host_of(pod: str) -> str:
    return f"node-{_stable_u64(pod) % 6}"


# --------------------------------------------------------------------------------------------
# traces


@dataclass(frozen=True)
class SpanSpec:
    service: str
    op: str
    kind: str  # OTLP kind as OO stores it ("0".."5")
    parent: int  # index in the template, -1 for the root
    base_ms: float  # median own time
    err_p: float = 0.0
    attrs: dict[str, str] = field(default_factory=dict)
    is_async: bool = False  # consumer: starts after its producer ends, not inside it


@dataclass(frozen=True)
class EdgeSpec:
    kind: str  # rpc | db | queue_publish | queue_consume | ext | internal_cross
    caller: int
    callee: int | None  # span index of the callee when instrumented
    dst: str | None = None  # virtual node URN when the callee is not instrumented


_PG_ORDERS = {"db_system": "postgresql", "db_name": "orders", "db_statement": "SELECT * FROM orders WHERE id = $1"}
_KAFKA = {"messaging_system": "kafka", "messaging_destination_name": "orders"}

TEMPLATES: tuple[tuple[float, tuple[SpanSpec, ...], tuple[EdgeSpec, ...]], ...] = (
    (0.40, (
        SpanSpec("frontend", "GET /api/checkout", "2", -1, 2.0, attrs={"http_method": "GET", "http_route": "/api/checkout"}),
        SpanSpec("frontend", "POST /checkout", "3", 0, 0.4, attrs={"http_method": "POST", "server_address": "checkout"}),
        SpanSpec("checkout", "POST /checkout", "2", 1, 3.0, 0.02, {"http_method": "POST", "http_route": "/checkout"}),
        SpanSpec("checkout", "payment.Payment/Charge", "3", 2, 0.3, attrs={"rpc_system": "grpc", "rpc_service": "payment.Payment"}),
        SpanSpec("payment", "payment.Payment/Charge", "2", 3, 4.0, 0.03, {"rpc_system": "grpc", "rpc_service": "payment.Payment"}),
        SpanSpec("payment", "POST", "3", 4, 40.0, 0.01, {"http_method": "POST", "server_address": "api.stripe.com"}),
        SpanSpec("checkout", "SELECT orders", "3", 2, 2.5, 0.005, _PG_ORDERS),
        SpanSpec("checkout", "orders publish", "4", 2, 0.8, attrs=_KAFKA),
        SpanSpec("shipping", "orders process", "5", 7, 6.0, 0.01, _KAFKA, is_async=True),
        SpanSpec("shipping", "GET", "3", 8, 0.3, attrs={"db_system": "redis"}),
    ), (
        EdgeSpec("rpc", 1, 2), EdgeSpec("rpc", 3, 4), EdgeSpec("ext", 5, None, "urn:ext:api.stripe.com"),
        EdgeSpec("db", 6, None, "urn:db:postgresql:orders"), EdgeSpec("queue_publish", 7, None, "urn:queue:kafka:orders"),
        EdgeSpec("queue_consume", 7, 8), EdgeSpec("db", 9, None, "urn:db:redis:redis"),
    )),
    (0.45, (
        SpanSpec("frontend", "GET /api/products", "2", -1, 1.5, attrs={"http_method": "GET", "http_route": "/api/products"}),
        SpanSpec("frontend", "GET /products", "3", 0, 0.4, attrs={"http_method": "GET", "server_address": "catalog"}),
        SpanSpec("catalog", "GET /products", "2", 1, 2.0, 0.01, {"http_method": "GET", "http_route": "/products"}),
        SpanSpec("catalog", "SELECT products", "3", 2, 1.8, 0.002, {"db_system": "postgresql", "db_name": "catalog"}),
        SpanSpec("catalog", "render", "1", 2, 1.0),
        SpanSpec("recommendation", "recommend", "0", 4, 5.0, 0.02),  # kinds missing across services
    ), (
        EdgeSpec("rpc", 1, 2), EdgeSpec("db", 3, None, "urn:db:postgresql:catalog"),
        EdgeSpec("internal_cross", 4, 5),
    )),
    (0.15, (
        SpanSpec("inventory-sync", "sync", "1", -1, 1.0),
        SpanSpec("inventory-sync", "PUT /stock", "3", 0, 0.5, attrs={"http_method": "PUT", "server_address": "inventory"}),
        SpanSpec("inventory", "PUT /stock", "2", 1, 2.0, 0.04, {"http_method": "PUT", "http_route": "/stock"}),
        SpanSpec("inventory", "UPDATE stock", "3", 2, 3.0, 0.01, {"db_system": "postgresql", "db_name": "inventory"}),
        SpanSpec("inventory", "GET", "3", 2, 25.0, 0.05, {"http_method": "GET", "server_address": "warehouse.partner.example.com"}),
    ), (
        EdgeSpec("rpc", 1, 2), EdgeSpec("db", 3, None, "urn:db:postgresql:inventory"),
        EdgeSpec("ext", 4, None, "urn:ext:warehouse.partner.example.com"),
    )),
)
_SPANS_PER_TRACE = sum(p * len(specs) for p, specs, _ in TEMPLATES)


def _template_traces(rng: np.random.Generator, specs: Sequence[SpanSpec], edges: Sequence[EdgeSpec], n: int,
                     minute_us: int, scale: int) -> tuple[list[pa.Table], pa.Table]:
    k = len(specs)
    own_ms = np.stack([rng.lognormal(np.log(s.base_ms), 0.5, n) for s in specs])  # (k, n)
    children: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(specs):
        if s.parent >= 0:
            children[s.parent].append(i)
    dur = own_ms.copy()
    for i in reversed(range(k)):  # a span lasts its own time plus its synchronous children
        for c in children[i]:
            if not specs[c].is_async:
                dur[i] += dur[c]
    start_ns = np.zeros((k, n), dtype=np.int64)
    start_ns[0] = minute_us * 1000 + rng.integers(0, US_MIN * 1000, n)
    for i in range(k):
        cursor = start_ns[i] + (own_ms[i] * 0.5e6).astype(np.int64)
        for c in children[i]:
            if specs[c].is_async:
                start_ns[c] = start_ns[i] + (dur[i] * 1e6).astype(np.int64) + (rng.lognormal(np.log(20), 0.6, n) * 1e6).astype(np.int64)
            else:
                start_ns[c] = cursor
                cursor = cursor + (dur[c] * 1e6).astype(np.int64)
    dur_ns = (dur * 1e6).astype(np.int64)
    error = np.stack([rng.random(n) < s.err_p for s in specs])
    for i, s in enumerate(specs):  # a client sees its server's error most of the time, not always
        if s.parent >= 0 and s.kind == "2" and specs[s.parent].kind == "3":
            error[s.parent] |= error[i] & (rng.random(n) < 0.7)
    trace_ids = _hex(rng, n, 16)
    span_ids = [_hex(rng, n, 8) for _ in range(k)]
    tables = []
    for i, s in enumerate(specs):
        pods = pods_of(s.service, scale)
        pod = [pods[j] for j in rng.integers(0, len(pods), n)]
        st = start_ns[i]
        status = np.where(error[i], "ERROR", np.where(rng.random(n) < 0.1, "OK", "UNSET"))
        cols: dict[str, Any] = {
            "_timestamp": pa.array(st // 1000, pa.int64()),
            "trace_id": trace_ids,
            "span_id": span_ids[i],
            "reference_parent_span_id": span_ids[s.parent] if s.parent >= 0 else [None] * n,
            "reference_parent_trace_id": trace_ids if s.parent >= 0 else [None] * n,
            "reference_ref_type": ["ChildOf" if s.parent >= 0 else None] * n,
            "service_name": [s.service] * n,
            "operation_name": [s.op] * n,
            "span_kind": [s.kind] * n,
            "span_status": status.tolist(),
            "status_code": pa.array(np.where(status == "ERROR", 2, np.where(status == "OK", 1, 0)), pa.int64()),
            "status_message": np.where(error[i], "internal error", "").tolist(),
            "start_time": pa.array(st.astype(np.uint64), pa.uint64()),
            "end_time": pa.array((st + dur_ns[i]).astype(np.uint64), pa.uint64()),
            "duration": pa.array(dur_ns[i] // 1000, pa.int64()),
            "events": ["[]"] * n,
            "links": ["[]"] * n,
            "service_k8s_pod_name": pod,
            "service_k8s_namespace_name": [NAMESPACE] * n,
            "service_service_version": ["1.4." + str(_stable_u64(s.service) % 9)] * n,
            "http_status_code": (np.where(error[i], "500", "200").tolist() if "http_method" in s.attrs else [None] * n),
        }
        cols["_o2_ingest_ts"] = pa.array(st // 1000 + 2_000_000, pa.int64())
        for a, v in s.attrs.items():
            cols[a] = [v] * n
        tables.append(pa.table(cols))
    edge_rows: dict[str, list[Any]] = defaultdict(list)
    for e in edges:
        caller = specs[e.caller]
        callee_err = error[e.callee] if e.callee is not None else np.zeros(n, bool)
        edge_rows["kind"] += [e.kind] * n
        edge_rows["src"] += [f"urn:svc:{caller.service}"] * n
        edge_rows["dst"] += [e.dst or f"urn:svc:{specs[e.callee].service}"] * n  # type: ignore[index]
        edge_rows["caller_start_us"] += (start_ns[e.caller] // 1000).tolist()
        edge_rows["error"] += (error[e.caller] | callee_err).tolist()
        edge_rows["latency_ms"] += (dur_ns[e.caller] / 1e6).tolist()
        edge_rows["trace_id"] += trace_ids
        edge_rows["caller_span_id"] += span_ids[e.caller]
    return tables, pa.table(dict(edge_rows))


def gen_traces(seed: int, minute_us: int, scale: int) -> tuple[pa.Table, pa.Table]:
    rng = _rng(seed, 1, minute_us // US_MIN)
    traces = int(round(SPANS_PER_MIN * scale / _SPANS_PER_TRACE))
    counts = rng.multinomial(traces, [p for p, _, _ in TEMPLATES])
    tables, edges = [], []
    for (_, specs, edge_specs), n in zip(TEMPLATES, counts, strict=True):
        if n:
            t, e = _template_traces(rng, specs, edge_specs, int(n), minute_us, scale)
            tables += t
            edges.append(e)
    ingester = rng.integers(0, 2, sum(t.num_rows for t in tables))
    spans = pa.concat_tables(tables, promote_options="permissive")
    return spans.append_column("__ingester", pa.array(ingester, pa.int8())), pa.concat_tables(edges)


# --------------------------------------------------------------------------------------------
# logs


@dataclass(frozen=True)
class LogTemplate:
    id: int
    services: tuple[str, ...]
    severities: tuple[str | int, ...]  # text, or a number when the sender had no text
    weight: float
    render: Callable[[np.random.Generator, int], list[str]]
    json_style: bool = False  # the sender's own keys: message + level, no severity


def _ints(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[int]:
    return rng.integers(lo, hi, n).tolist()  # type: ignore[no-any-return]


def _ips(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(1, 255, (n, 4))
    return [f"10.{b}.{c}.{d}" for _, b, c, d in a.tolist()]


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    return [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in _hex(rng, n, 16)]


_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_ROUTES = ("/api/v1/orders", "/api/v1/products", "/api/v1/cart", "/api/v1/users")
_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)


def _secret(rng: np.random.Generator, n: int, length: int) -> list[str]:
    return [bytes(r).decode() for r in _ALNUM[rng.integers(0, len(_ALNUM), (n, length))]]


LOG_TEMPLATES: tuple[LogTemplate, ...] = (
    LogTemplate(0, ("frontend",), ("INFO", "info"), 30, lambda r, n: [
        f'{ip} - - "GET {route}/{i} HTTP/1.1" 200 {b} {ms}ms' for ip, route, i, b, ms in zip(
            _ips(r, n), [_ROUTES[j] for j in _ints(r, n, 0, 4)], _ints(r, n, 1, 99999), _ints(r, n, 200, 9000),
            _ints(r, n, 1, 900), strict=True)]),
    LogTemplate(1, ("frontend",), ("INFO",), 6, lambda r, n: [
        f"User {_NAMES[u]}.{k}@example.com logged in from {ip}" for u, k, ip in zip(
            _ints(r, n, 0, len(_NAMES)), _ints(r, n, 1, 99), _ips(r, n), strict=True)]),
    LogTemplate(2, ("checkout",), ("DEBUG",), 3, lambda r, n: [
        f"Connecting to postgres://orders@db-{k}:5432/orders with password={s}" for k, s in zip(
            _ints(r, n, 1, 4), _secret(r, n, 14), strict=True)]),
    LogTemplate(3, ("payment",), ("DEBUG", "debug"), 4, lambda r, n: [
        f"Calling payment gateway with Authorization: Bearer {t}" for t in _secret(r, n, 32)]),
    LogTemplate(4, ("payment",), ("ERROR",), 3, lambda r, n: [
        f"Payment {u} failed: card declined (code {c})" for u, c in zip(_uuids(r, n), _ints(r, n, 51, 60), strict=True)]),
    LogTemplate(5, ("catalog",), ("info",), 12, lambda r, n: [
        f"cache miss for key product:{i} latency_ms={ms}" for i, ms in zip(
            _ints(r, n, 1, 50000), _ints(r, n, 1, 50), strict=True)], json_style=True),
    LogTemplate(6, ("catalog",), ("error",), 2, lambda r, n: [
        f"failed to load product {i}: connection reset by peer" for i in _ints(r, n, 1, 50000)], json_style=True),
    LogTemplate(7, ("checkout",), ("ERROR", "error"), 2, lambda r, n: [
        'java.lang.NullPointerException: Cannot invoke "Cart.getItems()" at '
        f"com.shop.checkout.CartService.add(CartService.java:{ln})" for ln in _ints(r, n, 40, 48)]),
    LogTemplate(8, ("inventory",), ("WARN", "warning"), 6, lambda r, n: [
        f'level=warn msg="slow query" duration_ms={ms} table=stock rows={k}' for ms, k in zip(
            _ints(r, n, 500, 5000), _ints(r, n, 1, 10000), strict=True)]),
    LogTemplate(9, ("inventory-sync",), ("WARN",), 4, lambda r, n: [
        f"Retrying request to warehouse.partner.example.com attempt {a}/5 after {ms}ms" for a, ms in zip(
            _ints(r, n, 1, 6), _ints(r, n, 100, 3000), strict=True)]),
    LogTemplate(10, ("inventory-sync",), (9,), 8, lambda r, n: [
        f"Processed batch {b} with {k} records in {ms} ms" for b, k, ms in zip(
            _ints(r, n, 1, 10**6), _ints(r, n, 1, 5000), _ints(r, n, 5, 4000), strict=True)]),
    LogTemplate(11, ("inventory-sync",), (17,), 1, lambda r, n: [
        f"Batch {b} failed: timeout after {s}s" for b, s in zip(_ints(r, n, 1, 10**6), _ints(r, n, 5, 60), strict=True)]),
    LogTemplate(12, ("shipping",), ("INFO",), 8, lambda r, n: [
        f"Shipment {u} created for order {o} to zone {z}" for u, o, z in zip(
            _uuids(r, n), _ints(r, n, 1, 10**6), [("EU", "US", "APAC")[j] for j in _ints(r, n, 0, 3)], strict=True)]),
    LogTemplate(13, ("shipping",), ("WARN",), 2, lambda r, n: [
        f"Consumer group shipping lag {k} on partition {p}" for k, p in zip(
            _ints(r, n, 100, 90000), _ints(r, n, 0, 12), strict=True)]),
    LogTemplate(14, ("recommendation",), ("INFO", "info"), 6, lambda r, n: [
        f"Computed {k} recommendations for user {u} in {ms} ms" for k, u, ms in zip(
            _ints(r, n, 1, 50), _ints(r, n, 1, 10**5), _ints(r, n, 1, 300), strict=True)]),
    LogTemplate(15, ("checkout",), ("INFO",), 1, lambda r, n: [
        f"Uploaded invoice {i}.pdf using access key AKIA{k} secret={s}" for i, k, s in zip(
            _ints(r, n, 1, 10**6), [x.upper() for x in _secret(r, n, 16)], _secret(r, n, 40), strict=True)]),
    LogTemplate(16, SERVICES, ("DEBUG",), 10, lambda r, n: ["GET /healthz 200"] * n),
    LogTemplate(17, ("shipping", "recommendation"), ("FATAL", "CRITICAL"), 0.5, lambda r, n: [
        f"Container exited with code 137 (OOMKilled) after {m} minutes, restarting" for m in _ints(r, n, 1, 900)]),
)


def gen_logs(seed: int, minute_us: int, scale: int) -> tuple[pa.Table, pa.Table]:
    rng = _rng(seed, 2, minute_us // US_MIN)
    n_total = LOGS_PER_MIN * scale
    weights = np.array([t.weight for t in LOG_TEMPLATES])
    counts = rng.multinomial(n_total, weights / weights.sum())
    parts = []
    for tpl, n in zip(LOG_TEMPLATES, counts.tolist(), strict=True):
        if not n:
            continue
        text = tpl.render(rng, n)
        service = [tpl.services[j] for j in rng.integers(0, len(tpl.services), n)]
        pod_choice = rng.integers(0, 2 * scale, n)
        pod = [pods_of(s, scale)[j] for s, j in zip(service, pod_choice.tolist(), strict=True)]
        sev = [tpl.severities[j] for j in rng.integers(0, len(tpl.severities), n)]
        numeric = isinstance(tpl.severities[0], int)
        parts.append(pa.table({
            "_timestamp": pa.array(minute_us + rng.integers(0, US_MIN, n), pa.int64()),
            "service_name": service,
            "k8s_pod_name": pod,
            "k8s_namespace_name": [NAMESPACE] * n,
            "host_name": [_host_of(p) for p in pod],
            "body": [None] * n if tpl.json_style else text,
            "message": text if tpl.json_style else [None] * n,
            "level": [str(s) for s in sev] if tpl.json_style else [None] * n,
            "severity": [None] * n if tpl.json_style else [str(s) for s in sev],
            "__numeric_severity": [numeric] * n,
            "__template": pa.array([tpl.id] * n, pa.int32()),
        }))
    logs = pa.concat_tables(parts, promote_options="permissive")
    # Numeric-severity senders go through their own ingester, whose files store severity as Int64.
    ingester = np.where(logs.column("__numeric_severity").to_numpy(zero_copy_only=False), 2,
                        rng.integers(0, 2, logs.num_rows))
    logs = logs.drop_columns(["__numeric_severity"]).append_column("__ingester", pa.array(ingester, pa.int8()))
    truth = pa.table({"_timestamp": logs.column("_timestamp"), "k8s_pod_name": logs.column("k8s_pod_name"),
                      "template_id": logs.column("__template"),
                      "text": pc.coalesce(logs.column("body"), logs.column("message"))})
    return logs.drop_columns(["__template"]), truth


def gen_k8s_events(seed: int, minute_us: int, scale: int) -> pa.Table:
    """A small logs stream with partition keys (``k8s_namespace_name=.../`` folders)."""
    rng = _rng(seed, 3, minute_us // US_MIN)
    n = 20 * scale
    ns = [("shop", "kube-system", "monitoring")[j] for j in rng.integers(0, 3, n)]
    reason = [("Scheduled", "Pulled", "BackOff", "Killing")[j] for j in rng.integers(0, 4, n)]
    return pa.table({
        "_timestamp": pa.array(minute_us + rng.integers(0, US_MIN, n), pa.int64()),
        "k8s_namespace_name": ns, "reason": reason,
        "body": [f"{r} pod {p}" for r, p in zip(reason, _hex(rng, n, 3), strict=True)],
        "severity": ["Warning" if r == "BackOff" else "Normal" for r in reason],
        "__ingester": pa.array(np.zeros(n, np.int8)),
    })


# --------------------------------------------------------------------------------------------
# metrics


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


def _drift(stream_type: str, ingester: int, t: pa.Table) -> pa.Table:
    """Each ingester writes its own schema version (what OO's readers must survive)."""
    if stream_type == "traces":
        if ingester == 1 and "http_status_code" in t.column_names:  # an older SDK sent it as a number
            i = t.column_names.index("http_status_code")
            t = t.set_column(i, "http_status_code", pc.cast(t.column(i), pa.int64()))
        if ingester == 0:
            t = t.drop_columns([c for c in ("service_service_version",) if c in t.column_names])
    elif stream_type == "metrics" and ingester == 1:
        t = t.set_column(t.column_names.index("flag"), "flag", pc.cast(t.column("flag"), pa.string()))
    elif stream_type == "logs":
        if ingester == 2 and "severity" in t.column_names:
            t = t.set_column(t.column_names.index("severity"), "severity", pc.cast(t.column("severity"), pa.int64()))
        if ingester == 1 and "k8s_pod_name" in t.column_names:
            t = t.append_column("k8s_container_name", pc.utf8_replace_slice(t.column("k8s_pod_name"), 0, 0, "c-"))
    # OO drops nulls, so a column without any value in a file is not in that file's schema
    return t.drop_columns([c for c in t.column_names if t.column(c).null_count == t.num_rows and t.num_rows])


def _file_id(seed: int, write_us: int, *parts: object) -> str:
    snowflake = ((write_us // 1000 - 1_577_836_800_000) << 22) | (_stable_u64(seed, *parts) & 0x3FFFFF)
    return f"{snowflake}{_stable_u64('suffix', seed, *parts) & 0xFFFFFF:06x}.parquet"


@dataclass
class FileRecord:
    key: str
    min_ts: int
    max_ts: int
    records: int
    original_size: int
    compressed_size: int
    deleted: bool = False


class BucketFileWriter:
    """Writes generated Parquet files in the bucket layout and records each one for OO's file_list."""


    def __init__(self, storage: Storage, org: str, seed: int) -> None:
        self.storage, self.org, self.seed = storage, org, seed
        self.files: list[FileRecord] = []

    def write_file(self, stream_type: str, stream: str, hour: datetime, partition: str, table: pa.Table,
                   write_us: int, *id_parts: object) -> FileRecord:
        table = table.sort_by("_timestamp")
        ts = table.column("_timestamp")
        lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
        meta = {"min_ts": str(lo), "max_ts": str(hi), "records": str(table.num_rows),
                "original_size": str(table.nbytes)}
        table = table.replace_schema_metadata(meta)
        name = _file_id(self.seed, write_us, stream_type, stream, hour.isoformat(), partition, *id_parts)
        key = f"{hour_prefix(self.org, stream_type, stream, hour)}{partition}{name}"
        size = self.storage.write_parquet(key, table, ROW_GROUP)
        rec = FileRecord(key, lo, hi, table.num_rows, table.nbytes, size)
        self.files.append(rec)
        return rec

    def write_hour(self, stream_type: str, stream: str, hour: datetime, table: pa.Table, *,
                   partition_by: str | None, compaction: bool) -> None:
        hour_start, _ = hour_bounds_us(hour)
        chunk = (table.column("_timestamp").to_numpy() - hour_start) // CHUNK_US
        ingester = table.column("__ingester").to_numpy()
        part_col = table.column(partition_by).to_numpy(zero_copy_only=False) if partition_by else None
        part_values = sorted(set(part_col.tolist())) if part_col is not None else [None]
        part_no = (np.searchsorted(np.array(part_values), part_col) if part_col is not None
                   else np.zeros(table.num_rows, np.int64))
        # one file per (ingester, 10-minute chunk[, partition]): sort once, then slice
        group = (ingester.astype(np.int64) * 1000 + chunk) * 1000 + part_no
        order = np.argsort(group, kind="stable")
        table, group = table.take(pa.array(order)), group[order]
        cuts = np.flatnonzero(np.diff(group)) + 1
        small: list[FileRecord] = []
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(group)], strict=True):
            g = int(group[lo])
            ingester_no, chunk_no, p = g // 1_000_000, (g // 1000) % 1000, g % 1000
            folder = f"{partition_by}={part_values[p]}/" if partition_by else ""
            body = _drift(stream_type, ingester_no, table.slice(lo, hi - lo).drop_columns(["__ingester"]))
            write_us = hour_start + (chunk_no + 1) * CHUNK_US + 30_000_000 + ingester_no * 1000
            small.append(self.write_file(stream_type, stream, hour, folder, body, write_us, ingester_no, chunk_no))
        if compaction:  # merged file, the small ones stay in the bucket but are deleted in file_list
            merged = table
            parts = [merged.filter(pc.equal(merged.column(partition_by), v)) for v in
                     sorted(set(merged.column(partition_by).to_pylist()))] if partition_by else [merged]
            for p in parts:
                folder = f"{partition_by}={p.column(partition_by)[0].as_py()}/" if partition_by else ""
                body = _drift(stream_type, 0, p.drop_columns(["__ingester"]))
                self.write_file(stream_type, stream, hour, folder, body, hour_start + 7_200_000_000, "compacted")
            for f in small:
                f.deleted = True


def write_file_list(url: str, org: str, files: Sequence[FileRecord]) -> None:
    """Write OO's ``file_list`` rows for the files written (table created when absent)."""
    import sqlite3

    from airflow_obs_provider.engine.db import connect
    from airflow_obs_provider.engine.oo.file_list import sqlite_path

    rows = []
    now_us = to_us(parse_time("2026-01-01T00:00:00Z"))  # fixed: the output stays deterministic
    for f in files:
        parts = f.key.split("/")
        stream = file_list_stream(parts[1], parts[2], parts[3])
        rows.append((org, stream, "/".join(parts[4:8]), "/".join(parts[8:]), f.deleted, False, f.min_ts, f.max_ts,
                     f.records, f.original_size, f.compressed_size, 0, now_us))
    ddl = ("CREATE TABLE IF NOT EXISTS file_list (org VARCHAR(100) NOT NULL, stream VARCHAR(256) NOT NULL,"
           " date VARCHAR(16) NOT NULL, file VARCHAR(496) NOT NULL, deleted BOOLEAN DEFAULT false NOT NULL,"
           " flattened BOOLEAN DEFAULT false NOT NULL, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL,"
           " records BIGINT NOT NULL, original_size BIGINT NOT NULL, compressed_size BIGINT NOT NULL,"
           " index_size BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (stream, date, file))")
    insert = ("INSERT INTO file_list (org, stream, date, file, deleted, flattened, min_ts, max_ts, records,"
              " original_size, compressed_size, index_size, updated_at) VALUES ({p}) ON CONFLICT (stream, date, file)"
              " DO UPDATE SET deleted = excluded.deleted, min_ts = excluded.min_ts, max_ts = excluded.max_ts,"
              " records = excluded.records")
    path = sqlite_path(url)
    if path is not None:
        with sqlite3.connect(path) as lite:
            lite.execute(ddl)
            lite.executemany(insert.format(p=", ".join(["?"] * 13)), rows)
        return
    conn = connect(url, application_name="obs-etl-gen")
    try:
        with conn.cursor() as cur:
            cur.execute(ddl)
            cur.executemany(insert.format(p=", ".join(["%s"] * 13)), rows)
        conn.commit()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# driver


@dataclass
class GenResult:
    files: list[FileRecord]
    rows: dict[str, int]
    seconds: float


def generate(storage: Storage, start: datetime, end: datetime, *, profile: str = "seed", seed: int = 1,
             org: str = "default", file_list_url: str | None = None, compaction: bool = False) -> GenResult:
    """Write ``[start, end)`` (whole minutes) of data and the truth sidecar into ``storage``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    if compaction and not file_list_url:
        raise ValueError("compaction leftovers only make sense with a file_list URL to mark them deleted")
    scale = PROFILES[profile]
    t0 = time.perf_counter()
    start_us, end_us = to_us(floor_time(start, timedelta(minutes=1))), to_us(floor_time(end, timedelta(minutes=1)))
    if end_us <= start_us:
        raise ValueError(f"--to must be at least one whole minute after --from ({start} .. {end})")
    writer = BucketFileWriter(storage, org, seed)
    pending: dict[tuple[str, str, int], list[pa.Table]] = defaultdict(list)
    rows: dict[str, int] = defaultdict(int)

    def add(stream_type: str, stream: str, t: pa.Table) -> None:
        t = t.filter(pc.and_(pc.greater_equal(t.column("_timestamp"), start_us), pc.less(t.column("_timestamp"), end_us)))
        hour_of = pc.divide(t.column("_timestamp"), 3_600_000_000)  # integer division: the UTC hour
        for h in sorted(set(hour_of.to_pylist())):
            pending[(stream_type, stream, h)].append(t.filter(pc.equal(hour_of, h)))
        rows[stream_type] += t.num_rows

    def flush(before_hour: int | None) -> None:
        for key in sorted(k for k in pending if before_hour is None or k[2] < before_hour):
            stream_type, stream, h = key
            table = pa.concat_tables(pending.pop(key), promote_options="permissive")
            writer.write_hour(stream_type, stream, from_us(h * 3_600_000_000), table,
                              partition_by="k8s_namespace_name" if stream == "k8s_events" else None,
                              compaction=compaction)

    truth_parts: dict[str, list[pa.Table]] = defaultdict(list)
    for minute_us in range(start_us, end_us, US_MIN):
        spans, edges = gen_traces(seed, minute_us, scale)
        add("traces", "default", spans)
        truth_parts["service_edges"].append(edges)
        logs, log_truth = gen_logs(seed, minute_us, scale)
        add("logs", "default", logs)
        truth_parts["log_lines"].append(log_truth)
        add("logs", "k8s_events", gen_k8s_events(seed, minute_us, scale))
        metrics, resets = gen_metrics(seed, minute_us, scale)
        for stream, t in metrics.items():
            add("metrics", stream, t)
        truth_parts["counter_resets"].append(resets)
        # spans run a few seconds past their minute: an hour is complete one minute after it ends
        flush(before_hour=(minute_us - US_MIN) // 3_600_000_000)
        if len(truth_parts["log_lines"]) >= 60:
            _write_truth(storage, truth_parts, start_us, end_us)
    flush(before_hour=None)
    _write_truth(storage, truth_parts, start_us, end_us)
    manifest = {
        "generator": "obs-etl gen-oo-data", "profile": profile, "seed": seed, "org": org,
        "from_us": start_us, "to_us": end_us, "rows": dict(rows), "files": len(writer.files),
        "compaction": compaction,
        "log_templates": [{"id": t.id, "services": list(t.services), "severities": list(t.severities),
                           "json_style": t.json_style} for t in LOG_TEMPLATES],
    }
    storage.write_bytes("_truth/manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    if file_list_url:
        write_file_list(file_list_url, org, writer.files)
    return GenResult(writer.files, dict(rows), time.perf_counter() - t0)


def _write_truth(storage: Storage, parts: dict[str, list[pa.Table]], start_us: int, end_us: int) -> None:
    """Write accumulated truth tables, one file per kind and first-minute of the batch."""
    for name in list(parts):
        tables = [t for t in parts.pop(name) if t.num_rows]
        if not tables:
            continue
        t = pa.concat_tables(tables)
        key_col = {"service_edges": "caller_start_us", "log_lines": "_timestamp",
                   "counter_resets": "first_ts_after_reset"}[name]
        t = t.filter(pc.and_(pc.greater_equal(t.column(key_col), start_us), pc.less(t.column(key_col), end_us)))
        if not t.num_rows:
            continue
        first = from_us(pc.min(t.column(key_col)).as_py()).strftime("%Y%m%dT%H%M%S")
        storage.write_parquet(f"_truth/{name}-{first}.parquet", t.sort_by(key_col), 1 << 20)


def cli_generate(args: argparse.Namespace) -> int:
    secrets = SourceSecrets.from_env()
    storage = Storage.from_uri(args.out, secrets)
    result = generate(storage, parse_time(args.start), parse_time(args.end), profile=args.profile, seed=args.seed,
                      org=args.org, file_list_url=args.file_list_url,
                      compaction=args.compaction)
    total = sum(result.rows.values())
    print(f"wrote {len(result.files)} files, {total} records ({', '.join(f'{k} {v}' for k, v in sorted(result.rows.items()))})"
          f" to {storage.display} in {result.seconds:.2f}s")
    return 0
