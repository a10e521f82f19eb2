"""DuckDB plumbing shared by the aggregations: an air-gapped connection and typed column views.

Workers are often air-gapped, so DuckDB must never try to download or autoload an
extension at run time: every connection is opened with both switches off.

OpenObserve files of one stream do not share a schema (columns come and go, a
conflicting column is widened to text). The aggregations therefore never touch a
raw column directly: :func:`typed_view` projects exactly the columns they need,
``TRY_CAST`` to the type they expect, and a typed ``NULL`` for a column that is
absent from this window's data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from airflow_obs_provider.engine.cpus import available_cpus
from airflow_obs_provider.engine.masking import mask_urn
from airflow_obs_provider.engine.oo.schema import ensure_columns

DUCKDB_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # DuckDB's allocator keeps up to 512 MiB of freed query memory by default, so every query of a
    # window added its hash tables to the job's RSS (~20 MB each on a seed window). Handing bulk
    # frees back at once keeps a seed window near its working set, at no measurable cost.
    "allocator_bulk_deallocation_flush_threshold": "1MB",
}


_databases: dict[tuple[int, int | None], duckdb.DuckDBPyConnection] = {}
_databases_lock = threading.Lock()


def connect_duckdb(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A new connection to this process's in-memory DuckDB database, which cannot fetch extensions.

    Opening a database costs 15-35 ms, a connection to an open one microseconds, so windows share
    one database per process (and thread setting). Each connection still has its own temporary
    views, tables and registered Arrow tables, all dropped on ``close()``; nothing here creates a
    persistent table. Keyed by pid: a forked child must not use its parent's database, whose
    worker threads did not survive the fork.
    """
    key = (os.getpid(), threads)
    with _databases_lock:
        database = _databases.get(key)
        if database is None:
            # DuckDB would take the host's CPU count, not the container's quota (see engine.cpus)
            config = {**DUCKDB_CONFIG, "threads": threads or available_cpus()}
            database = _databases[key] = duckdb.connect(":memory:", config=config)
            # type "arrow" as a string: duckdb 1.x and 2.x name the enum in different modules
            database.create_function(MASK_URN_SQL, _mask_urns, ["VARCHAR"], "VARCHAR",  # type: ignore[call-overload]
                                     type="arrow", side_effects=False)
    return database.cursor()


MASK_URN_SQL = "obs_mask_urn"  # DuckDB function: masking.mask_urn of a URN built in SQL


def _mask_urns(urns: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """:func:`masking.mask_urn` over a vector of URNs: each distinct value once (a vector of 2048 rows
    names a handful of resources), the rest by lookup."""
    distinct = pc.unique(urns)
    masked = pa.array([None if u is None else mask_urn(u) for u in distinct.to_pylist()], pa.string())
    return pc.take(masked, pc.index_in(urns, distinct))


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB (names come from users' data files)."""
    return '"' + name.replace('"', '""') + '"'


def typed_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    table: pa.Table,
    columns: Mapping[str, str],
    *,
    constants: Mapping[str, int] | None = None,
) -> None:
    """Register ``table`` and create view ``view`` holding ``columns`` (name -> DuckDB type), cast.

    Absent columns are added as nulls first (:func:`ensure_columns`); ``constants`` adds
    integer columns (e.g. the index of the stream a row came from).
    """
    table = ensure_columns(table, {name: pa.string() for name in columns})
    parts = [f"TRY_CAST({quote_ident(name)} AS {sql_type}) AS {quote_ident(name)}" for name, sql_type in columns.items()]
    parts += [f"CAST({int(value)} AS INTEGER) AS {quote_ident(name)}" for name, value in (constants or {}).items()]
    raw = f"{view}__raw"
    con.register(raw, table)
    # view names are ours; column names are quoted by quote_ident
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {', '.join(parts)} FROM {raw}")  # noqa: S608


def stream_union_view(
    con: duckdb.DuckDBPyConnection, view: str, tables: Sequence[pa.Table], columns: Mapping[str, str]
) -> None:
    """One typed view over the tables of several streams, each row tagged with ``stream_idx``."""
    for i, table in enumerate(tables):
        typed_view(con, f"{view}_{i}", table, columns, constants={"stream_idx": i})
    selects = " UNION ALL ".join(f"SELECT * FROM {view}_{i}" for i in range(len(tables)))  # noqa: S608
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {selects}")  # noqa: S608 - our own view names


def sql_literal(text: str) -> str:
    """A DuckDB string literal (for configuration text such as URN templates)."""
    return "'" + text.replace("'", "''") + "'"
