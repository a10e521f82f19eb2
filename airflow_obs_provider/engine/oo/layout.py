"""OpenObserve's bucket layout: keys, hour prefixes and the trees a reader must skip.

``[prefix/]files/{org}/{stream_type}/{stream}/{YYYY}/{MM}/{DD}/{HH}/[{field}={value}/...]{id}.parquet``
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from airflow_obs_provider.engine.window import from_us, to_us

# Sibling trees of the stream types under files/{org}/ that hold no records for us.
SKIPPED_TREES = frozenset({"index", "bloom", "midx", "service_graph", "metadata"})
_HOUR = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(\d{2})$")
# OO sanitises stream names to this alphabet, so a valid name never needs escaping in SQL.
_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_:]+$")
_STREAM_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")


class LayoutError(ValueError):
    """A key does not follow OpenObserve's layout."""


@dataclass(frozen=True)
class OOKey:
    """One data file's key, split into its parts (the key is relative to the bucket prefix)."""

    org: str
    stream_type: str
    stream: str
    hour: datetime  # UTC hour of the records' _timestamp
    partitions: tuple[tuple[str, str], ...]  # field=value folders; never used as column values
    file: str  # the opaque id incl. extension

    @property
    def date(self) -> str:
        """``YYYY/MM/DD/HH`` as in OO's ``file_list.date``."""
        return self.hour.strftime("%Y/%m/%d/%H")

    @property
    def key(self) -> str:
        parts = [f"{k}={v}" for k, v in self.partitions]
        return "/".join(["files", self.org, self.stream_type, self.stream, self.date, *parts, self.file])

    @property
    def is_parquet(self) -> bool:
        return self.file.endswith(".parquet")


def sanitize_stream_name(name: str) -> str:
    """OO's stream name rule: characters outside ``[a-zA-Z0-9_:]`` become ``_``, lowercased."""
    return _STREAM_NAME_BAD.sub("_", name).lower()


def stream_sql(stream: str) -> str:
    """OO SQL selecting every record of ``stream`` (the API reader's query and the locators' hint)."""
    if not _STREAM_NAME.match(stream):
        raise ValueError(f"stream name {stream!r} is not an OpenObserve stream name ([a-zA-Z0-9_:])")
    return f'SELECT * FROM "{stream}"'  # noqa: S608 - validated above; OO's SQL, not Postgres


def stream_root(org: str, stream_type: str, stream: str) -> str:
    return f"files/{org}/{stream_type}/{stream}"


def file_list_stream(org: str, stream_type: str, stream: str) -> str:
    """The ``stream`` value of OO's ``file_list`` table."""
    return f"{org}/{stream_type}/{stream}"


def hour_prefix(org: str, stream_type: str, stream: str, hour: datetime) -> str:
    return f"{stream_root(org, stream_type, stream)}/{hour.strftime('%Y/%m/%d/%H')}/"


def hours_covering(start_us: int, end_us: int) -> Iterator[datetime]:
    """UTC hours whose span meets ``[start_us, end_us)``."""
    if end_us <= start_us:
        return
    hour_us = 3_600_000_000
    cur = start_us - start_us % hour_us
    while cur < end_us:
        yield from_us(cur)
        cur += hour_us


def parse_key(key: str) -> OOKey:
    """Split a key (relative to the bucket prefix) into its parts; raises LayoutError if it is not one."""
    parts = key.strip("/").split("/")
    if len(parts) < 9 or parts[0] != "files":
        raise LayoutError(f"not an OpenObserve data key: {key!r}")
    org, stream_type, stream = parts[1], parts[2], parts[3]
    if stream_type in SKIPPED_TREES:
        raise LayoutError(f"key is in the skipped {stream_type!r} tree: {key!r}")
    m = _HOUR.match("/".join(parts[4:8]))
    if not m:
        raise LayoutError(f"key has no YYYY/MM/DD/HH folders: {key!r}")
    try:
        hour = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), tzinfo=from_us(0).tzinfo)
    except ValueError as exc:
        raise LayoutError(f"key has an impossible hour folder: {key!r}") from exc
    partitions = []
    for folder in parts[8:-1]:
        name, sep, value = folder.partition("=")
        if not sep or not name:
            raise LayoutError(f"folder {folder!r} below the hour is not field=value: {key!r}")
        partitions.append((name, value))
    return OOKey(org, stream_type, stream, hour, tuple(partitions), parts[-1])


def hour_bounds_us(hour: datetime) -> tuple[int, int]:
    start = to_us(hour)
    return start, to_us(hour + timedelta(hours=1))
