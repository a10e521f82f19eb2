"""Naming the uninstrumented peer of a client or producer span (a *virtual node*, design §5).

OpenTelemetry renames attributes between semantic-convention versions and a stream may hold
spans of old and new instrumentations (or one instrumentation emitting both spellings, as the
``OTEL_SEMCONV_STABILITY_OPT_IN=.../dup`` modes do). OpenObserve flattens each attribute into
a column (``.`` -> ``_``); a column a file lacks reads as NULL. Every attribute is therefore
read as a list of columns, current name first, and the first non-empty one wins:

============  ==========================================================================
attribute     columns, in precedence order
============  ==========================================================================
db system     ``db_system_name`` (semconv >= 1.30), ``db_system``
db name       ``db_namespace`` (semconv >= 1.26), ``db_name``
queue system  ``messaging_system``
destination   ``messaging_destination_name`` (semconv >= 1.17), ``messaging_destination``
peer service  ``service_peer_name`` (newest), ``peer_service``
rpc service   ``rpc_service``
rpc system    ``rpc_system_name`` (newest), ``rpc_system``
host          ``server_address``, ``net_peer_name``, ``network_peer_address``, then the host
              of ``url_full``, ``http_url``, ``url``; a port is removed, IP literals and
              socket paths are skipped (they name an instance, not a peer)
============  ==========================================================================

Then the peer's kind and name, first matching row wins:

1. a db system or db name: ``urn:db:<system or unknown>:<db name, else host, else system>``
2. a queue system or destination: ``urn:queue:<system or unknown>:<destination, else host,
   else system>``
3. a peer service: ``urn:svc:<peer service>``
4. an rpc service: ``urn:svc:<rpc service>``
5. a host: ``urn:ext:<host>``
6. an rpc system: ``urn:ext:<rpc system>``

A database or queue span is typed by its own attributes even when it also carries
``peer.service``: the database is one node for all its callers, whatever label each caller
gives it (``peer.service`` is a caller-side name; two callers may label one database
differently, or not at all). Ports are not part of a name, so a peer reached through a URL and
through ``server.address`` is one node.

``legacy_peer_urn`` keeps the rules of earlier releases so that a resource they named
differently can be given its current URN (``writer.adopt_renamed_resources``).
"""

from __future__ import annotations

DB_SYSTEM = ("db_system_name", "db_system")
DB_NAME = ("db_namespace", "db_name")
QUEUE_SYSTEM = ("messaging_system",)
QUEUE_DESTINATION = ("messaging_destination_name", "messaging_destination")
PEER_SERVICE = ("service_peer_name", "peer_service")
RPC_SERVICE = ("rpc_service",)
RPC_SYSTEM = ("rpc_system_name", "rpc_system")
HOST_ADDRESSES = ("server_address", "net_peer_name", "network_peer_address")
HOST_URLS = ("url_full", "http_url", "url")

PEER_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(
    DB_SYSTEM + DB_NAME + QUEUE_SYSTEM + QUEUE_DESTINATION + PEER_SERVICE + RPC_SERVICE + RPC_SYSTEM
    + HOST_ADDRESSES + HOST_URLS))

# an IP literal, with or without a port: IPv4, bracketed IPv6, or bare IPv6 (two colons at
# least, so that a host made of hex letters with a port, such as ``db:5432``, is a host)
_IP = r"^(\d{1,3}(\.\d{1,3}){3}(:\d+)?|\[[0-9a-fA-F:.]*\](:\d+)?|[0-9a-fA-F.]*:[0-9a-fA-F.]*:[0-9a-fA-F:.]*)$"


def _first(columns: tuple[str, ...]) -> str:
    """The first non-empty value of the columns (current name first)."""
    return "coalesce(" + ", ".join(f"nullif({c}, '')" for c in columns) + ")"


def _address_host(col: str) -> str:
    """Host of an address column (``host[:port]``); NULL when empty, an IP literal or a socket path."""
    h = f"lower(regexp_replace(trim({col}), ':[0-9]+$', ''))"
    return (f"CASE WHEN nullif(trim({col}), '') IS NULL OR regexp_matches(trim({col}), '{_IP}') "
            f"OR contains({col}, '/') THEN NULL ELSE {h} END")


def _url_host(col: str) -> str:
    host = f"regexp_extract({col}, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\\[[^\\]]*\\]|[^:/?#]*)', 1)"
    return (f"CASE WHEN nullif({host}, '') IS NULL OR regexp_matches({host}, '{_IP}') THEN NULL "
            f"ELSE lower({host}) END")


def host_sql(addresses: tuple[str, ...] = HOST_ADDRESSES, urls: tuple[str, ...] = HOST_URLS) -> str:
    return "coalesce(" + ", ".join([_address_host(c) for c in addresses] + [_url_host(c) for c in urls]) + ")"


_PEER_URN = """CASE
      WHEN _db_system IS NOT NULL OR _db_name IS NOT NULL
        THEN 'urn:db:' || lower(coalesce(_db_system, 'unknown')) || ':'
             || coalesce(lower(_db_name), _host, lower(_db_system))
      WHEN _q_system IS NOT NULL OR _q_dest IS NOT NULL
        THEN 'urn:queue:' || lower(coalesce(_q_system, 'unknown')) || ':'
             || coalesce(lower(_q_dest), _host, lower(_q_system))
      WHEN _peer_service IS NOT NULL THEN 'urn:svc:' || lower(_peer_service)
      WHEN _rpc_service IS NOT NULL THEN 'urn:svc:' || lower(_rpc_service)
      WHEN _host IS NOT NULL THEN 'urn:ext:' || _host
      WHEN _rpc_system IS NOT NULL THEN 'urn:ext:' || lower(_rpc_system)
    END"""

# The rules of releases before the current conventions: old attribute names only,
# ``peer.service`` first, ``db.name`` before ``db.namespace``, a host before a bare system.
_LEGACY_PEER_URN = """CASE
      WHEN nullif(peer_service, '') IS NOT NULL THEN 'urn:svc:' || lower(peer_service)
      WHEN coalesce(nullif(db_name, ''), nullif(db_namespace, '')) IS NOT NULL
        THEN 'urn:db:' || lower(coalesce(nullif(db_system, ''), 'unknown')) || ':'
             || lower(coalesce(nullif(db_name, ''), nullif(db_namespace, '')))
      WHEN nullif(messaging_destination_name, '') IS NOT NULL
        THEN 'urn:queue:' || lower(coalesce(nullif(messaging_system, ''), 'unknown')) || ':'
             || lower(messaging_destination_name)
      WHEN nullif(rpc_service, '') IS NOT NULL THEN 'urn:svc:' || lower(rpc_service)
      WHEN _legacy_host IS NOT NULL THEN 'urn:ext:' || _legacy_host
      WHEN nullif(db_system, '') IS NOT NULL THEN 'urn:db:' || lower(db_system) || ':' || lower(db_system)
      WHEN nullif(messaging_system, '') IS NOT NULL
        THEN 'urn:queue:' || lower(messaging_system) || ':' || lower(messaging_system)
      WHEN nullif(rpc_system, '') IS NOT NULL THEN 'urn:ext:' || lower(rpc_system)
    END"""


def spans_with_peers_sql(source: str) -> str:
    """``source``'s rows plus ``peer_urn`` (NULL when the span names no peer) and ``legacy_peer_urn``.

    Each attribute is resolved once, in the inner select, so the rules below read short names.
    """
    resolved = {
        "_db_system": _first(DB_SYSTEM), "_db_name": _first(DB_NAME), "_q_system": _first(QUEUE_SYSTEM),
        "_q_dest": _first(QUEUE_DESTINATION), "_peer_service": _first(PEER_SERVICE),
        "_rpc_service": _first(RPC_SERVICE), "_rpc_system": _first(RPC_SYSTEM), "_host": host_sql(),
        "_legacy_host": host_sql(("server_address", "net_peer_name"), HOST_URLS),
    }
    inner = ", ".join(f"{expr} AS {name}" for name, expr in resolved.items())
    return (f"SELECT *, {_PEER_URN} AS peer_urn, {_LEGACY_PEER_URN} AS legacy_peer_urn "  # noqa: S608
            f"FROM (SELECT *, {inner} FROM {source})")
