"""Span fixtures written from OpenTelemetry's semantic conventions, flattened as OpenObserve does.

Each peer case is one caller span's attributes under their OpenTelemetry names (old names,
current names, or both at once, as instrumentations in ``OTEL_SEMCONV_STABILITY_OPT_IN=dup``
mode emit them) with the virtual node the README's precedence table says it calls. The
expected URNs are written by hand here, from the specification, not computed.

OpenObserve flattens an attribute name into a column by replacing every character outside
``[a-z0-9_]`` with ``_`` (``db.system.name`` -> ``db_system_name``); a file holds only the
columns its spans carry, so old and new spellings live in different files of one stream.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

MINUTE = 60_000_000
BUCKET = 5 * MINUTE


def column(attribute: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", attribute.lower())


@dataclass(frozen=True)
class PeerCase:
    """Calls from ``caller`` (kind client ``3`` or producer ``4``) to an uninstrumented peer."""

    name: str
    attributes: dict[str, str]
    expected: str  # the virtual node's URN, by the README's table
    kind: str = "3"
    caller: str = "checkout"
    calls: int = 9


PEER_CASES = (
    # databases (point 1: db.system.name; point 3: system + host is a database; point 4:
    # db.namespace wins; point 5: peer.service does not rename a database)
    PeerCase("db old names", {"db.system": "postgresql", "db.name": "orders", "net.peer.name": "pg-1"},
             "urn:db:postgresql:orders", calls=14),
    PeerCase("db current names", {"db.system.name": "postgresql", "db.namespace": "orders", "server.address": "pg-1",
                                  "server.port": "5432"},
             "urn:db:postgresql:orders", caller="billing", calls=11),
    PeerCase("db both spellings", {"db.system": "postgresql", "db.system.name": "postgresql", "db.name": "legacy_orders",
                                   "db.namespace": "orders"},
             "urn:db:postgresql:orders", caller="reports", calls=7),
    PeerCase("db system.name and host only", {"db.system.name": "redis", "server.address": "cache-1:6379"},
             "urn:db:redis:cache-1", calls=23),
    PeerCase("db system and host only", {"db.system": "mysql", "net.peer.name": "mysql-1"},
             "urn:db:mysql:mysql-1", calls=6),
    PeerCase("db with peer.service", {"db.system.name": "postgresql", "db.namespace": "billing",
                                      "peer.service": "BillingDB"},
             "urn:db:postgresql:billing", calls=8),
    PeerCase("db system with an IP only", {"db.system": "mongodb", "network.peer.address": "10.1.2.3",
                                           "network.peer.port": "27017"},
             "urn:db:mongodb:mongodb", calls=5),
    PeerCase("db system.name on a host also called over http", {"db.system.name": "elasticsearch", "server.address": "search-1"},
             "urn:db:elasticsearch:search-1", calls=4),
    # queues (producer spans)
    PeerCase("queue current names", {"messaging.system": "kafka", "messaging.destination.name": "orders-topic"},
             "urn:queue:kafka:orders-topic", kind="4", calls=12),
    PeerCase("queue old destination", {"messaging.system": "rabbitmq", "messaging.destination": "jobs",
                                       "net.peer.name": "mq-1"},
             "urn:queue:rabbitmq:jobs", kind="4", calls=6),
    PeerCase("queue both spellings", {"messaging.system": "kafka", "messaging.destination.name": "payments-v2",
                                      "messaging.destination": "payments"},
             "urn:queue:kafka:payments-v2", kind="4", caller="billing", calls=5),
    PeerCase("queue system and host only", {"messaging.system": "activemq", "server.address": "broker-1"},
             "urn:queue:activemq:broker-1", kind="4", calls=3),
    # services named by the caller, rpc, external hosts
    PeerCase("rpc service", {"rpc.system": "grpc", "rpc.service": "payments.PaymentService",
                             "server.address": "pay-1"},
             "urn:svc:payments.paymentservice", calls=10),
    PeerCase("rpc system.name and host", {"rpc.system.name": "grpc", "server.address": "fraud.internal:443"},
             "urn:ext:fraud.internal", calls=4),
    PeerCase("peer.service over a url", {"peer.service": "Shipping", "url.full": "https://ship.example.com/quote"},
             "urn:svc:shipping", calls=9),
    PeerCase("service.peer.name and peer.service", {"service.peer.name": "tax", "peer.service": "old-tax"},
             "urn:svc:tax", calls=4),
    PeerCase("url.full", {"url.full": "https://user@api.stripe.com:443/v1/charges?x=1"},
             "urn:ext:api.stripe.com", calls=17),
    PeerCase("http.url", {"http.url": "http://maps.example.org/geo"},
             "urn:ext:maps.example.org", calls=5),
    PeerCase("url.full and http.url", {"url.full": "https://new.example.com/a", "http.url": "https://old.example.com/a"},
             "urn:ext:new.example.com", calls=3),
    PeerCase("server.address and net.peer.name", {"server.address": "new-host", "net.peer.name": "old-host"},
             "urn:ext:new-host", calls=3),
    PeerCase("network.peer.address only", {"network.peer.address": "legacy-host", "network.peer.port": "8080"},
             "urn:ext:legacy-host", calls=3),
    PeerCase("plain http to the search host", {"url.full": "http://search-1:9200/_search"},
             "urn:ext:search-1", calls=4),
)


@dataclass
class SpanWriter:
    """Builds span rows (flattened columns) with unique ids and seeded durations."""

    seed: int = 13
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file name -> rows
    _n: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:015x}"

    def span(self, file: str, ts: int, service: str | None, kind: str | None, *, trace: str,
             parent: str | None = None, attributes: dict[str, str] | None = None, duration: int | None = None,
             status: str = "UNSET") -> str:
        span_id = self._id("s")
        row: dict[str, Any] = {
            "_timestamp": ts, "trace_id": trace, "span_id": span_id, "reference_parent_span_id": parent,
            "service_name": service, "span_kind": kind, "span_status": status,
            "duration": duration if duration is not None else self.rng.randint(500, 250_000),
            "operation_name": "op",
        }
        for name, value in (attributes or {}).items():
            row[column(name)] = value
        self.rows.setdefault(file, []).append(row)
        return span_id

    def trace(self) -> str:
        return self._id("t").rjust(32, "0")

    def status(self, i: int) -> str:
        return "ERROR" if i % 4 == 1 else ("OK" if i % 2 else "UNSET")

    def tables(self) -> Iterator[tuple[str, pa.Table]]:
        for name, rows in sorted(self.rows.items()):
            cols = list(dict.fromkeys(k for r in rows for k in r))
            # only the columns some span of the file carries, as OpenObserve writes them
            yield name, pa.table({c: pa.array([r.get(c) for r in rows],
                                               pa.int64() if c in ("_timestamp", "duration") else pa.string())
                                  for c in cols})


def spread(start: int, n: int, width: int = 2 * BUCKET, salt: int = 0) -> list[int]:
    """``n`` caller start times spread over ``[start, start + width)``, never on a bucket edge."""
    return [start + (width * i) // n + 7_919 * (salt + 1) % 50_000 + 1 for i in range(n)]
