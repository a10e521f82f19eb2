"""OO's authoritative list of live files (its metadata DB's ``file_list`` table).

Selecting files here, exactly as OpenObserve does, avoids counting compaction leftovers
twice: merged-away files stay in the bucket for ~2 h but are ``deleted`` here.
``url`` is the metadata DB: ``postgresql://...`` or ``sqlite:///path/to/metadata.sqlite``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from airflow_obs_provider.engine.oo.layout import file_list_stream

# Only the table name is fixed; every value is a parameter.
_SELECT = ("SELECT date, file, min_ts, max_ts, records FROM file_list"
           " WHERE stream = {p} AND deleted = false AND max_ts >= {p} AND min_ts <= {p}"
           " ORDER BY date, file")
# Every live file of an organisation meeting a time range, all streams at once (late-data checks).
_SELECT_ORG = ("SELECT stream, date, file, min_ts, max_ts, records FROM file_list"
               " WHERE org = {p} AND deleted = false AND max_ts >= {p} AND min_ts <= {p}"
               " ORDER BY stream, date, file")


class FileListError(RuntimeError):
    """OO's metadata DB could not be queried; the message never holds a password."""


@dataclass(frozen=True)
class FileEntry:
    key: str  # files/{org}/{type}/{stream}/{date}/{file}
    min_ts: int
    max_ts: int
    records: int


def sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):] if url.startswith("sqlite:////") else url[len("sqlite://"):]
    return None


def _query(url: str, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    from airflow_obs_provider.engine.db import DatabaseError, connect, redact_echo, redact_url

    path = sqlite_path(url)
    try:
        if path is not None:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as lite:
                return list(lite.execute(statement.format(p="?"), params))
        conn = connect(url, application_name="obs-etl-file-list")
        try:
            with conn.cursor() as cur:
                cur.execute(statement.format(p="%s"), params)
                return list(cur.fetchall())
        finally:
            conn.close()
    except DatabaseError as exc:  # say which database: the warehouse is Postgres too
        raise FileListError(f"OpenObserve's metadata DB (file_list): {exc}") from None
    except Exception as exc:  # sqlite3/psycopg2 errors: name the DB, not its password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileListError(f"cannot query file_list in {redact_url(url)}: {redact_echo(first, url)}") from None


def select_files(url: str, org: str, stream_type: str, stream: str, start_us: int, end_us: int) -> list[FileEntry]:
    """Live files of a stream meeting the window, selected as OO does (``max_ts >= start AND min_ts <= end``)."""
    name = file_list_stream(org, stream_type, stream)
    rows = _query(url, _SELECT, (name, start_us, end_us))
    return [FileEntry(f"files/{name}/{date}/{file}", int(lo), int(hi), int(n or 0)) for date, file, lo, hi, n in rows]


def select_org_files(url: str, org: str, start_us: int, end_us: int) -> dict[str, list[FileEntry]]:
    """Live files of every stream of ``org`` meeting ``[start_us, end_us]``, by ``file_list`` stream name
    (``{org}/{type}/{stream}``): one query, however many streams and windows are checked."""
    out: dict[str, list[FileEntry]] = {}
    for stream, date, file, lo, hi, n in _query(url, _SELECT_ORG, (org, start_us, end_us)):
        out.setdefault(stream, []).append(FileEntry(f"files/{stream}/{date}/{file}", int(lo), int(hi), int(n or 0)))
    return out
