"""Reading one window of one OpenObserve stream: the interface every reader implements.

Consumers (aggregation, pattern mining) use only this module::

    from airflow_obs_provider.engine.oo.source import OOReadError, SourceSecrets, open_source

    src = open_source(tenant.source, base_dir=config.base_dir, secrets=SourceSecrets.from_env())
    for stream in src.streams("metrics"):              # sorted stream names of that type
        got = src.read("metrics", stream, window.start_us, window.end_us)
        got.table        # pyarrow.Table: rows with start_us <= _timestamp < end_us (int64 µs)
        got.object_keys  # bucket keys (or file ids) actually read: store them in oo_locator
        got.records      # == got.table.num_rows
        got.files        # bucket sources: (key, rows inside the window) of every file considered
        src.ui_url("metrics", stream, window.start_us, window.end_us, sql)  # OO UI link or None

Source blocks (``tenants[].source`` in the YAML; credentials are never in YAML):

- ``{kind: local, path: DIR, org: ORG, file_list?: bool}``: a folder in the bucket layout
  (``DIR/files/{org}/{type}/{stream}/YYYY/MM/DD/HH/...parquet``); relative to ``base_dir``.
- ``{kind: s3, bucket: B, prefix?: P, org: ORG, endpoint_url?: URL, region?: R, file_list?: bool}``;
  keys and endpoint from :class:`SourceSecrets` (the endpoint in YAML wins over the secret's).
- ``{kind: api, org: ORG, base_url?: URL, page_size?: N, partitions?: bool, verify?: bool|CA-bundle path}``;
  user/password (an OO service account) and the URL from :class:`SourceSecrets`.
- any kind may add ``ui_base_url`` (the OO web UI) for :meth:`OOSource.ui_url`.

Bucket kinds select files from OO's ``file_list`` table when ``secrets.file_list_url`` is set
(``file_list: false`` opts out; ``file_list: true`` without a URL is a configuration error);
otherwise they list hour prefixes and warn that compaction leftovers may be counted twice.

Columns are normalised (see :mod:`.schema`): ``_timestamp`` int64 µs always; traces
``start_time``/``end_time`` int64 ns, ``duration`` int64 µs, ``span_kind``/``span_status``
strings; metrics ``value`` float64, ``le``/``is_monotonic`` strings; logs ``severity`` string;
any other column keeps its type, or becomes a string when files disagree. Optional columns
may be absent from a window: use :func:`.schema.ensure_columns` before referring to them.

Every failure to read (corrupt Parquet, missing object, refused credentials, API errors,
partial or shortened API results) raises :class:`OOReadError` naming the stream, the key or
request and the cause, never a secret.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from airflow_obs_provider.engine.oo.tls import parse_verify

STREAM_TYPES = ("logs", "metrics", "traces")


class OOReadError(RuntimeError):
    """Data of a stream could not be read; the message names the stream, key/request and cause."""


class SourceConfigError(ValueError):
    """A tenant's ``source:`` block is missing a key or holds a bad value."""


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class SourceSecrets:
    """Credentials and endpoints: from env vars (CLI) or Airflow connections (operators), never YAML."""

    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_session_token: str | None = field(default=None, repr=False)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    api_base_url: str | None = None
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)
    api_verify: bool | str = True  # False, True, or a CA bundle path (a private CA's OpenObserve)
    file_list_url: str | None = field(default=None, repr=False)  # OO's metadata DB holding file_list

    @classmethod
    def from_env(cls) -> SourceSecrets:
        return cls(
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
            s3_session_token=_env("S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            s3_region=_env("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
            api_base_url=_env("OO_API_URL"),
            api_user=_env("OO_API_USER"),
            api_password=_env("OO_API_PASSWORD"),
            api_verify=parse_verify(_env("OO_API_VERIFY")),
            file_list_url=_env("OO_FILE_LIST_URL"),
        )

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in a message (used to scrub third-party error texts)."""
        return tuple(v for v in (self.s3_secret_access_key, self.s3_session_token, self.api_password) if v)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secret_values())


def scrub(text: str, secret_values: Iterable[str]) -> str:
    """``text`` (a third-party error message) with every known secret value replaced by ``***``, and
    whatever else looks like a credential (a URL's password, ``password=...``) masked by :func:`redact_url`."""
    from airflow_obs_provider.engine.db import redact_url

    for secret in secret_values:
        text = text.replace(secret, "***")
    return redact_url(text)


@dataclass(frozen=True)
class StreamRead:
    stream_type: str
    stream: str
    table: pa.Table  # rows with start_us <= _timestamp < end_us, columns normalised
    object_keys: tuple[str, ...]  # keys / file ids read (for oo_locator)
    records: int
    # Bucket sources: every file considered (read or pruned) and its rows inside the window, so a
    # later check can tell new files (late data) from files already counted (engine.late_data).
    files: tuple[tuple[str, int], ...] = ()


class OOSource(Protocol):
    kind: str
    org: str

    def streams(self, stream_type: str) -> list[str]: ...

    def read(self, stream_type: str, stream: str, start_us: int, end_us: int,
             columns: Collection[str] | None = None) -> StreamRead:
        """Records with ``start_us <= _timestamp < end_us``; only ``columns`` (plus ``_timestamp``) when
        given: OO streams often carry hundreds of flattened attribute columns a job never looks at."""
        ...

    def ui_url(self, stream_type: str, stream: str, start_us: int, end_us: int, sql: str) -> str | None: ...


def check_stream_type(stream_type: str) -> None:
    if stream_type not in STREAM_TYPES:
        raise ValueError(f"stream type must be one of {STREAM_TYPES}, got {stream_type!r}")


def open_source(source: Mapping[str, Any], *, base_dir: Path | None = None,
                secrets: SourceSecrets | None = None) -> OOSource:
    """Build the reader a tenant's ``source:`` block asks for."""
    if not isinstance(source, Mapping):
        raise SourceConfigError("source must be a mapping with a 'kind' (local, s3 or api)")
    kind = source.get("kind")
    secrets = secrets or SourceSecrets()
    if kind in ("local", "s3"):
        from airflow_obs_provider.engine.oo.bucket import open_bucket_source

        return open_bucket_source(source, base_dir=base_dir, secrets=secrets)
    if kind == "api":
        from airflow_obs_provider.engine.oo.api import open_api_source

        return open_api_source(source, secrets=secrets)
    raise SourceConfigError(f"source.kind must be local, s3 or api (got {kind!r})")


def oo_ui_url(ui_base_url: str | None, org: str, stream_type: str, stream: str, start_us: int, end_us: int,
              sql: str) -> str | None:
    """A link to OO's web UI that reruns ``sql`` over ``[start_us, end_us)``, or None without a UI address.

    The format is the one OO's own "share link" writes and its pages read back (checked against the
    OpenObserve web UI source, not yet against a running OpenObserve):

    - logs and metrics open the logs page, ``{ui_base_url}/web/logs`` (its stream-type switch covers
      metrics; ``/web/metrics`` is a PromQL page): ``stream_type``, ``stream``, ``from``/``to`` in µs,
      ``refresh=0``, ``sql_mode=true``, ``query`` = the SQL, ``org_identifier``, and ``quick_mode=false``
      because quick mode would narrow ``SELECT *`` to a few "interesting" columns;
    - traces open ``{ui_base_url}/web/traces``, whose editor holds only a filter that the page wraps in
      its own SELECT, so ``query`` is the WHERE clause of ``sql`` (empty when it has none);
      ``search_mode=spans`` (older UI) and ``tab=spans`` (newer UI) list the spans themselves
      rather than one row per trace;
    - ``query`` is encoded like OO's ``b64EncodeUnicode``: base64 of the UTF-8 text with the URL-safe
      alphabet and ``.`` for padding (``+/=`` become ``-_.``), which OO's decoder reverses.
    """
    if not ui_base_url:
        return None
    import base64
    import re
    from urllib.parse import urlencode

    def oo_b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().replace("=", ".")

    base = ui_base_url.rstrip("/")
    if stream_type == "traces":
        # The first WHERE is the clause: stream names cannot contain spaces (layout.stream_sql).
        parts = re.split(r"\s+WHERE\s+", sql, maxsplit=1, flags=re.IGNORECASE)
        where = parts[1].strip() if len(parts) == 2 else ""
        traces = {"stream": stream, "from": str(start_us), "to": str(end_us), "query": oo_b64(where),
                  "org_identifier": org, "search_mode": "spans", "tab": "spans"}
        return f"{base}/web/traces?{urlencode(traces)}"
    logs = {
        "stream_type": stream_type, "stream": stream, "from": str(start_us), "to": str(end_us),
        "refresh": "0", "sql_mode": "true", "query": oo_b64(sql), "org_identifier": org,
        "quick_mode": "false",
    }
    return f"{base}/web/logs?{urlencode(logs)}"
