"""The HTTP search API reader: for windows newer than OO's WAL horizon (or when there is no bucket).

``POST /api/{org}/_search?type=...`` with ``SELECT * FROM "stream"``, paged with from/size
(optionally split first by ``_search_partition``). A partial result or a range that OO
shortened (``max_query_range``) is an error: a window must be complete or fail.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import pyarrow.compute as pc
import requests

from airflow_obs_provider.engine.db import redact_url
from airflow_obs_provider.engine.oo.layout import stream_sql
from airflow_obs_provider.engine.oo.reader_types import (
    OOReadError,
    SourceConfigError,
    StreamRead,
    check_stream_type,
)
from airflow_obs_provider.engine.oo.schema import (
    SchemaError,
    check_timestamp_column,
    normalise,
    rows_to_table,
)
from airflow_obs_provider.engine.oo.ui_link import oo_ui_url
from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.tls import parse_verify

_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")
_KNOWN_KEYS = {"kind", "org", "base_url", "page_size", "partitions", "verify", "timeout", "ui_base_url"}


def _function_errors(body: Mapping[str, Any]) -> list[str]:
    fe = body.get("function_error")
    if not fe:
        return []
    return [str(x) for x in fe] if isinstance(fe, list) else [str(fe)]


def _without_userinfo(url: str) -> str:
    """``url`` without ``user[:password]@`` (``https://u:pw@oo.example.com/x`` -> ``https://oo.example.com/x``);
    the password is masked first, so one holding '/' or '@' goes too."""
    return _USERINFO.sub(r"\1", redact_url(url), count=1)


class ApiSource:
    kind = "api"

    def __init__(self, org: str, base_url: str, user: str, password: str, *, verify: bool | str = True,
                 page_size: int = 1000, partitions: bool = False, timeout: float = 60.0,
                 ui_base_url: str | None = None) -> None:
        if page_size <= 0:
            raise SourceConfigError("source.page_size must be positive")
        self.org = org
        self.base_url = base_url.rstrip("/")
        # what messages show: OO_API_URL may carry user:password@ although the account is configured apart
        self.shown_url = redact_url(self.base_url)
        self.page_size = page_size
        self.partitions = partitions
        self.timeout = timeout
        self.ui_base_url = ui_base_url or _without_userinfo(self.base_url)  # a link stored in oo_locator
        self._session = requests.Session()
        self._session.auth = (user, password)
        # Per request, not Session.verify: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
        # a session's setting (psf/requests#3829), which would drop a configured CA bundle or verify=False.
        self._verify = verify

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base_url}/api/{self.org}/{path}"
        try:
            resp = self._session.request(method, url, timeout=self.timeout, verify=self._verify, **kwargs)
        except requests.RequestException as exc:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: request failed: {type(exc).__name__}: "
                              f"{redact_url(str(exc).splitlines()[0]) if str(exc) else ''}") from None
        if resp.status_code in (401, 403):
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: authentication refused "
                              f"(HTTP {resp.status_code}); use a service account (email + token)")
        if resp.status_code != 200:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: HTTP {resp.status_code}: "
                              f"{resp.text[:300]}")
        try:
            body = resp.json()
        except ValueError:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: unexpected answer {str(body)[:200]}")
        return body

    def streams(self, stream_type: str) -> list[str]:
        check_stream_type(stream_type)
        body = self._call("GET", "streams", f"list {stream_type} streams", params={"type": stream_type})
        return sorted(str(s["name"]) for s in body.get("list", []) if isinstance(s, dict) and s.get("name"))

    def _time_ranges(self, stream_type: str, sql: str, start_us: int, end_us: int, what: str) -> list[tuple[int, int]]:
        if not self.partitions:
            return [(start_us, end_us)]
        body = self._call("POST", "_search_partition", what + " (partitions)", params={"type": stream_type},
                          json={"sql": sql, "start_time": start_us, "end_time": end_us})
        parts = sorted((int(a), int(b)) for a, b in body.get("partitions") or [])
        # The partitions must tile the window exactly, or rows would be missed or doubled.
        cursor = start_us
        for a, b in parts:
            if a != cursor or b <= a:
                raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: partitions {parts} do not tile "
                                  f"[{start_us}, {end_us})")
            cursor = b
        if cursor != end_us:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: partitions {parts} do not tile "
                              f"[{start_us}, {end_us})")
        return parts

    def _check(self, body: Mapping[str, Any], start_us: int, end_us: int, what: str) -> None:
        errors = _function_errors(body)
        if body.get("is_partial"):
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: OO returned a partial result "
                              f"(is_partial){': ' + '; '.join(errors) if errors else ''}")
        new_start, new_end = body.get("new_start_time"), body.get("new_end_time")
        if (new_start and int(new_start) != start_us) or (new_end and int(new_end) != end_us):
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: OO shortened the time range to "
                              f"[{new_start or start_us}, {new_end or end_us}) (max_query_range?)"
                              f"{': ' + '; '.join(errors) if errors else ''}")
        if errors:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: OO reported: {'; '.join(errors)}")

    def read(self, stream_type: str, stream: str, start_us: int, end_us: int,
             columns: Collection[str] | None = None) -> StreamRead:
        check_stream_type(stream_type)
        if end_us <= start_us or start_us <= 0:
            raise ValueError(f"invalid window [{start_us}, {end_us}) for {stream_type}/{stream}")
        sql = stream_sql(stream)
        what = f"stream {stream_type}/{stream} [{start_us}, {end_us})"
        hits: list[dict[str, Any]] = []
        requests_made: list[str] = []
        for a, b in self._time_ranges(stream_type, sql, start_us, end_us, what):
            offset = 0
            while True:
                query = {"sql": sql, "start_time": a, "end_time": b, "from": offset, "size": self.page_size}
                body = self._call("POST", "_search", what, params={"type": stream_type}, json={"query": query})
                self._check(body, a, b, what)
                page = body.get("hits") or []
                hits.extend(h for h in page if isinstance(h, dict))
                requests_made.append(f"_search?type={stream_type}&start_time={a}&end_time={b}&from={offset}"
                                     f"&size={self.page_size}")
                if len(page) < self.page_size:
                    break
                offset += len(page)
        if columns is not None:  # OO's SQL fails on a column a stream lacks, so project here, not in the query
            hits = [{k: v for k, v in h.items() if k == "_timestamp" or k in columns} for h in hits]
        try:
            table = normalise([rows_to_table(hits)] if hits else [], stream_type)
            check_timestamp_column(table)  # milliseconds would all fall outside the window, silently
        except SchemaError as exc:
            raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: {exc}") from None
        if "_timestamp" in table.column_names and table.num_rows:
            if table.column("_timestamp").null_count:
                raise OOReadError(f"OpenObserve API {self.shown_url}: {what}: hits without _timestamp")
            ts = table.column("_timestamp")
            table = table.filter(pc.and_(pc.greater_equal(ts, start_us), pc.less(ts, end_us)))
        return StreamRead(stream_type, stream, table, tuple(requests_made), table.num_rows)

    def ui_url(self, stream_type: str, stream: str, start_us: int, end_us: int, sql: str) -> str | None:
        return oo_ui_url(self.ui_base_url, self.org, stream_type, stream, start_us, end_us, sql)

    def __repr__(self) -> str:
        return f"ApiSource({self.shown_url}, org={self.org!r})"


def open_api_source(source: Mapping[str, Any], *, secrets: SourceSecrets) -> ApiSource:
    unknown = set(source) - _KNOWN_KEYS
    if unknown:
        raise SourceConfigError(f"source keys {sorted(unknown)} are not known for kind 'api' "
                                f"(known: {sorted(_KNOWN_KEYS)}); credentials belong in connections/env")
    org = source.get("org")
    if not org or not isinstance(org, str):
        raise SourceConfigError("source.org is required for kind 'api'")
    base_url = source.get("base_url") or secrets.api_base_url
    if not base_url:
        raise SourceConfigError("kind 'api' needs source.base_url or OO_API_URL / the OpenObserve connection")
    if not secrets.api_user or not secrets.api_password:
        raise SourceConfigError("kind 'api' needs a service account: OO_API_USER and OO_API_PASSWORD "
                                "(or the OpenObserve connection's login and password)")
    return ApiSource(org, str(base_url), secrets.api_user, secrets.api_password,
                     verify=parse_verify(source.get("verify", secrets.api_verify)),
                     page_size=int(source.get("page_size", 1000)), partitions=bool(source.get("partitions", False)),
                     timeout=float(source.get("timeout", 60)), ui_base_url=source.get("ui_base_url"))

