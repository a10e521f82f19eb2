"""``oo_locator``: where the raw records behind an aggregate live in OpenObserve.

One locator per stream read by a window, keyed by the ``_timestamp`` range actually read
(metrics: the window plus the counter lookback; traces: the closed 5-minute buckets plus the
pairing slack; logs: the closed buckets). ``sql_hint`` reruns exactly that read in OO's SQL,
``ui_url`` opens it in OO's web UI when the source knows the UI's address, ``object_keys``
lists the files (or API requests) read and ``record_count`` the rows. Aggregate rows carry
the id of the locator of the stream their numbers came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_obs_provider.engine.oo.layout import stream_sql
from airflow_obs_provider.engine.oo.source import OOSource, StreamRead


@dataclass(frozen=True)
class Locator:
    stream_type: str
    stream: str
    from_us: int
    to_us: int
    sql_hint: str
    ui_url: str | None
    object_keys: tuple[str, ...]
    record_count: int


def sql_hint(stream: str, from_us: int, to_us: int) -> str:
    """OO SQL selecting the records of ``stream`` in ``[from_us, to_us)``."""
    return f"{stream_sql(stream)} WHERE _timestamp >= {int(from_us)} AND _timestamp < {int(to_us)}"


def locator_for(source: OOSource, read: StreamRead, from_us: int, to_us: int) -> Locator:
    hint = sql_hint(read.stream, from_us, to_us)
    return Locator(
        stream_type=read.stream_type,
        stream=read.stream,
        from_us=from_us,
        to_us=to_us,
        sql_hint=hint,
        ui_url=source.ui_url(read.stream_type, read.stream, from_us, to_us, hint),
        object_keys=tuple(read.object_keys),
        record_count=int(read.records),
    )
