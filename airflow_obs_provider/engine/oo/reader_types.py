"""What every OpenObserve reader shares with its callers: the errors, the result of one read and the
reader protocol. A module of its own so the readers (:mod:`.bucket`, :mod:`.api`) and the facade
that picks one (:mod:`.source`) import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

STREAM_TYPES = ("logs", "metrics", "traces")


class OOReadError(RuntimeError):
    """Data of a stream could not be read; the message names the stream, key/request and cause."""


class SourceConfigError(ValueError):
    """A tenant's ``source:`` block is missing a key or holds a bad value."""


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
