"""A real HTTP server on loopback that answers OpenObserve's search API over a bucket-layout folder.

OpenObserve itself cannot run here, so this is a test double that follows the contract page
(``shared/docs/openobserve-contract.md`` §4) and nothing more:

- ``GET  /api/{org}/streams?type=T`` -> ``{"list": [{"name", "stream_type"}]}``
- ``POST /api/{org}/_search?type=T`` with ``{"query": {"sql", "start_time", "end_time", "from", "size"}}``
  -> ``took, hits, total, from, size, scan_size, scan_records, is_partial, function_error`` and,
  when a stream's ``max_query_range`` moved the start, ``new_start_time``/``new_end_time`` plus a
  warning in ``function_error`` (as OO does). Hits are flattened rows without null fields, newest
  first; ``size`` is capped (``max_size``) so clients must page; times must be non-zero µs.
- ``POST /api/{org}/_search_partition?type=T`` with ``{"sql", "start_time", "end_time"}``
  -> ``{"partitions": [[start, end], ...]}`` (newest first).
- HTTP Basic auth with one service account; anything else gets 401.
- optionally HTTPS (``start(tls=(cert, key))``), for clients that must verify a private CA.

Only ``SELECT * FROM "stream"`` is understood (what our reader sends). Rows are read from the
Parquet files with plain pyarrow, independently of the reader under test.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq

_SQL = re.compile(r'^\s*SELECT \* FROM "([a-zA-Z0-9_:]+)"\s*$', re.IGNORECASE)
_HOUR_US = 3_600_000_000


@dataclass
class OODouble:
    root: Path  # folder holding files/{org}/...
    org: str = "default"
    user: str = "svc@example.com"
    password: str = "svc-token"
    max_size: int = 1000
    max_query_range_hours: dict[str, int] = field(default_factory=dict)  # stream -> hours
    partial: bool = False  # answer is_partial=true (a querier timed out, say)
    partition_us: int = 60_000_000
    requests: list[dict[str, Any]] = field(default_factory=list)
    _rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    # -- data -------------------------------------------------------------------------------
    def rows(self, stream_type: str, stream: str) -> list[dict[str, Any]]:
        key = (stream_type, stream)
        if key not in self._rows:
            base = self.root / "files" / self.org / stream_type / stream
            rows: list[dict[str, Any]] = []
            for path in sorted(base.rglob("*.parquet")):
                for row in pq.read_table(path).to_pylist():
                    rows.append({k: v for k, v in row.items() if v is not None})
            rows.sort(key=lambda r: -r["_timestamp"])  # stable: ties keep file order
            self._rows[key] = rows
        return self._rows[key]

    def streams(self, stream_type: str) -> list[str]:
        base = self.root / "files" / self.org / stream_type
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    # -- endpoints --------------------------------------------------------------------------
    def search(self, stream_type: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        q = body.get("query") or {}
        m = _SQL.match(str(q.get("sql", "")))
        start, end = int(q.get("start_time") or 0), int(q.get("end_time") or 0)
        if not m:
            return 400, {"code": 400, "message": "Search SQL not supported by the test double"}
        if start <= 0 or end <= 0:
            return 400, {"code": 400, "message": "start_time and end_time must be non-zero"}
        stream = m[1]
        answer: dict[str, Any] = {"function_error": "", "is_partial": self.partial}
        limit = self.max_query_range_hours.get(stream)
        if limit and end - start > limit * _HOUR_US:
            start = end - limit * _HOUR_US
            answer.update(new_start_time=start, new_end_time=end,
                          function_error=f"Query duration is modified due to query range restriction of {limit} hours")
        matching = [r for r in self.rows(stream_type, stream) if start <= r["_timestamp"] < end]
        offset, size = int(q.get("from") or 0), min(int(q.get("size") or 1000), self.max_size)
        hits = matching[offset:offset + size]
        answer.update(took=1, hits=hits, total=len(matching), size=size, scan_size=0,
                      scan_records=len(matching), **{"from": offset})
        return 200, answer

    def search_partition(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        start, end = int(body.get("start_time") or 0), int(body.get("end_time") or 0)
        if start <= 0 or end <= start:
            return 400, {"code": 400, "message": "invalid time range"}
        parts = [[a, min(a + self.partition_us, end)] for a in range(start, end, self.partition_us)]
        return 200, {"partitions": list(reversed(parts))}

    # -- server -----------------------------------------------------------------------------
    def start(self, tls: tuple[Path, Path] | None = None) -> str:
        """Serve on a free loopback port; ``tls`` = (certificate, key) PEM files for HTTPS. Returns the base URL."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                expected = "Basic " + base64.b64encode(f"{double.user}:{double.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._reply(401, {"code": 401, "message": "Unauthorized Access"})
                body = json.loads(raw) if raw else {}
                double.requests.append({"method": method, "path": url.path, "params": params, "body": body})
                parts = url.path.strip("/").split("/")
                if len(parts) != 3 or parts[0] != "api" or parts[1] != double.org:
                    return self._reply(404, {"code": 404, "message": "not found"})
                endpoint, stream_type = parts[2], params.get("type", "logs")
                if method == "GET" and endpoint == "streams":
                    names = double.streams(stream_type)
                    return self._reply(200, {"list": [{"name": n, "stream_type": stream_type} for n in names]})
                if method == "POST" and endpoint == "_search":
                    return self._reply(*double.search(stream_type, body))
                if method == "POST" and endpoint == "_search_partition":
                    return self._reply(*double.search_partition(body))
                return self._reply(404, {"code": 404, "message": "not found"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
