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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_obs_provider.engine.oo.reader_types import (
    STREAM_TYPES,
    OOReadError,
    OOSource,
    SourceConfigError,
    StreamRead,
    check_stream_type,
)
from airflow_obs_provider.engine.oo.ui_link import oo_ui_url
from airflow_obs_provider.engine.secrets import SourceSecrets, scrub

# The names consumers take from here (the readers' shared types live in .reader_types, the
# credentials in engine.secrets), so ``from ...oo.source import OOReadError, SourceSecrets`` keeps working.
__all__ = [
    "STREAM_TYPES", "OOReadError", "OOSource", "SourceConfigError", "SourceSecrets", "StreamRead",
    "check_stream_type", "oo_ui_url", "open_source", "scrub",
]


def open_source(source: Mapping[str, Any], *, base_dir: Path | None = None,
                secrets: SourceSecrets | None = None) -> OOSource:
    """Build the reader a tenant's ``source:`` block asks for."""
    if not isinstance(source, Mapping):
        raise SourceConfigError("source must be a mapping with a 'kind' (local, s3 or api)")
    kind = source.get("kind")
    secrets = secrets or SourceSecrets()
    if kind in ("local", "s3"):
        # Readers are imported on demand: the API reader brings requests, the bucket reader pyarrow's
        # filesystems, and a caller needs only the one its tenants use.
        from airflow_obs_provider.engine.oo.bucket import open_bucket_source

        return open_bucket_source(source, base_dir=base_dir, secrets=secrets)
    if kind == "api":
        from airflow_obs_provider.engine.oo.api import open_api_source

        return open_api_source(source, secrets=secrets)
    raise SourceConfigError(f"source.kind must be local, s3 or api (got {kind!r})")
