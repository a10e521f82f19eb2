"""The virtual-node precedence table and service fallback on one-span tables (DuckDB only)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from support.semconv_spans import PEER_CASES, PeerCase, column

from airflow_obs_provider.engine.aggregate import peers
from airflow_obs_provider.engine.aggregate.calls import aggregate_calls
from airflow_obs_provider.engine.aggregate.urn import UrnMapping

B = 1_714_557_600_000_000  # a bucket start
END = B + 300_000_000


def _spans(rows: list[dict[str, Any]]) -> pa.Table:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({c: pa.array([r.get(c) for r in rows],
                                 pa.int64() if c in ("_timestamp", "duration") else pa.string()) for c in cols})


def _client(attributes: dict[str, str], kind: str | None = "3", service: str | None = "api") -> dict[str, Any]:
    row: dict[str, Any] = {"_timestamp": B + 1, "trace_id": "t", "span_id": "c", "service_name": service,
                           "span_kind": kind, "duration": 2000}
    row.update({column(k): v for k, v in attributes.items()})
    return row


def _edges(rows: list[dict[str, Any]], mapping: UrnMapping | None = None) -> set[tuple[str, str]]:
    result = aggregate_calls([("default", _spans(rows))], B, END, mapping or UrnMapping())
    return {(r["src_urn"], r["dst_urn"]) for r in result.rows.to_pylist()}


@pytest.mark.parametrize("case", PEER_CASES, ids=lambda c: c.name)
def test_every_row_of_the_precedence_table(case: PeerCase) -> None:
    assert _edges([_client(case.attributes, case.kind)]) == {("urn:svc:api", case.expected)}


@pytest.mark.parametrize(("address", "host"), [
    ("db:5432", "db"),  # hex letters and a port: a host, not an IPv6 literal
    ("Cafe.Example:80", "cafe.example"),
    ("10.0.0.7:5432", None), ("[fe80::1]:5432", None), ("fe80::1", None), ("::1", None),
    ("/var/run/postgresql/.s.PGSQL.5432", None),  # a unix socket path names no peer
])
def test_hosts_drop_ports_ip_literals_and_socket_paths(address: str, host: str | None) -> None:
    got = _edges([_client({"db.system.name": "postgresql", "network.peer.address": address})])
    assert got == {("urn:svc:api", f"urn:db:postgresql:{host or 'postgresql'}")}


def test_a_span_without_kind_names_no_peer() -> None:
    assert _edges([_client({"db.system.name": "postgresql"}, kind=None)]) == set()


def test_empty_services_fall_back_to_the_tenants_fallback_resource() -> None:
    mapping = UrnMapping.from_config({"fallback": "urn:host:nowhere"})
    server = {"_timestamp": B + 5, "trace_id": "t", "span_id": "s", "reference_parent_span_id": "c",
              "service_name": "", "span_kind": "2", "duration": 1000}
    result = aggregate_calls([("default", _spans([_client({"peer.service": "ignored"}), server]))], B, END, mapping)
    assert [(r["src_urn"], r["dst_urn"]) for r in result.rows.to_pylist()] == [("urn:svc:api", "urn:host:nowhere")]
    assert {r.urn: r.type for r in result.resources} == {"urn:svc:api": "svc", "urn:host:nowhere": "host"}
    # two spans of services that differ only in case are one service: no self-call
    same = dict(server, service_name="API")
    assert aggregate_calls([("default", _spans([_client({}), same]))], B, END, mapping).rows.num_rows == 0


def test_renames_are_offered_only_when_unambiguous() -> None:
    rows = [_client({"db.system": "mysql", "net.peer.name": "mysql-1"}),
            dict(_client({"db.system": "redis", "server.address": "shared"}), span_id="r", trace_id="r"),
            dict(_client({"url.full": "http://shared/x"}), span_id="h", trace_id="h"),
            dict(_client({"db.system": "postgresql", "peer.service": "ordersdb", "db.name": "orders"}),
                 span_id="p", trace_id="p")]
    renames = aggregate_calls([("default", _spans(rows))], B, END, UrnMapping()).renames
    # urn:ext:shared is still called over http; urn:svc:ordersdb may be a real service
    assert [(r.legacy_urn, r.urn, r.type) for r in renames] == [("urn:ext:mysql-1", "urn:db:mysql:mysql-1", "db")]


def _readme_tables() -> list[list[list[str]]]:
    """The tables of the README's virtual-node section, as rows of cells."""
    text = (Path(__file__).parents[4] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Virtual nodes: peers that send no spans", 1)[1].split("\n### ", 1)[0]
    tables: list[list[list[str]]] = []
    previous = ""
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append([c.strip() for c in line.strip("|").split("|")])
        previous = line
    return tables


def test_the_readme_tables_are_the_code() -> None:
    attributes, rules = _readme_tables()[:2]
    documented = {row[0]: re.findall(r"`([a-z_]+)`", row[1]) for row in attributes[1:]}
    assert documented == {
        "db system": list(peers.DB_SYSTEM), "db name": list(peers.DB_NAME),
        "queue system": list(peers.QUEUE_SYSTEM), "destination": list(peers.QUEUE_DESTINATION),
        "peer service": list(peers.PEER_SERVICE), "rpc service / system": list(peers.RPC_SERVICE + peers.RPC_SYSTEM),
        "host": list(peers.HOST_ADDRESSES + peers.HOST_URLS),
    }
    documented_kinds = [re.search(r"`urn:([a-z]+):", row[2]).group(1) for row in rules[1:]]  # type: ignore[union-attr]
    code_kinds = re.findall(r"THEN 'urn:([a-z]+):'", peers._PEER_URN)
    assert documented_kinds == code_kinds == ["db", "queue", "svc", "svc", "ext", "ext"]
