"""The signals ``obs-etl gen-oo-data`` writes: traces, logs, Kubernetes events and metrics of a small
shop, one deterministic random stream per ``(seed, minute)`` (see :mod:`.gen` for the files and the CLI)."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
