"""Schema normalisation: files of one stream disagree, the reader's output does not.

OpenObserve widens a column whose type conflicts across files to text; we do the same,
after pinning the reserved columns to the types the contract fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_COMMON: dict[str, pa.DataType] = {"_timestamp": pa.int64()}

# Reserved columns with fixed types per stream type (openobserve-contract.md §2).
PINNED_TYPES: dict[str, dict[str, pa.DataType]] = {
    "logs": {**_COMMON, "severity": pa.string(), "trace_id": pa.string(), "span_id": pa.string()},
    "traces": {
        **_COMMON,
        "_o2_ingest_ts": pa.int64(),
        "start_time": pa.int64(),  # ns (UInt64 in the files; int64 holds ns until year 2262)
        "end_time": pa.int64(),  # ns
        "duration": pa.int64(),  # µs
        "span_kind": pa.string(),
        "span_status": pa.string(),
        "trace_id": pa.string(),
        "span_id": pa.string(),
        "reference_parent_span_id": pa.string(),
        "reference_parent_trace_id": pa.string(),
        "reference_ref_type": pa.string(),
        "service_name": pa.string(),
        "operation_name": pa.string(),
    },
    "metrics": {
        **_COMMON,
        "__name__": pa.string(),
        "value": pa.float64(),
        "le": pa.string(),
        "is_monotonic": pa.string(),
        "aggregation_temporality": pa.string(),
        "start_time": pa.string(),  # ns as text in OTLP metrics
        "quantile": pa.string(),
    },
}

# Columns every (even empty) result has, so consumers can always refer to them.
ALWAYS_PRESENT = ("_timestamp",)


class SchemaError(ValueError):
    """A pinned column holds values that cannot be cast to its fixed type."""


# ``_timestamp`` is Int64 MICROseconds since the epoch (openobserve-contract.md §2). Every real
# value lies between these bounds (1973 and the year 5138); seconds, milliseconds and
# nanoseconds of any plausible date fall outside, so a wrong unit is caught, never silently
# pruned away as "outside the window".
TIMESTAMP_US_MIN = 10**14
TIMESTAMP_US_MAX = 10**17


def timestamp_unit_problem(lo: int, hi: int) -> str | None:
    """Why ``_timestamp`` values in ``[lo, hi]`` are not microseconds, or None when they can be."""
    if TIMESTAMP_US_MIN <= lo and hi < TIMESTAMP_US_MAX:
        return None
    odd = lo if lo < TIMESTAMP_US_MIN else hi
    if 10**11 <= odd < TIMESTAMP_US_MIN:
        unit = "milliseconds"
    elif 10**8 <= odd < 10**11:
        unit = "seconds"
    elif odd >= TIMESTAMP_US_MAX:
        unit = "nanoseconds"
    else:
        unit = "no time unit (zero, negative or tiny values)"
    return (f"_timestamp values {lo}..{hi} are not microseconds since the epoch (they look like {unit}); "
            "OpenObserve stores Int64 microseconds")


def check_timestamp_column(table: pa.Table) -> None:
    """Raise SchemaError when ``_timestamp`` is not an integer column of plausible microseconds."""
    if "_timestamp" not in table.column_names or not table.num_rows:
        return
    col = table.column("_timestamp")
    t = _canonical(col.type)
    if not pa.types.is_integer(t):
        sample = next((v for v in col.to_pylist()[:1]), None)
        raise SchemaError(f"_timestamp has type {col.type} (e.g. {sample!r}), not Int64 microseconds")
    bounds = pc.min_max(col)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is None or hi is None:
        return
    problem = timestamp_unit_problem(int(lo), int(hi))
    if problem:
        raise SchemaError(problem)


def _canonical(t: pa.DataType) -> pa.DataType:
    """Treat string flavours and dictionary encodings as the plain type they carry."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def target_schema(schemas: Iterable[pa.Schema], stream_type: str) -> pa.Schema:
    """Union by name: pinned columns get their fixed type; others keep theirs, or string on conflict."""
    pinned = PINNED_TYPES[stream_type]
    order: list[str] = [c for c in ALWAYS_PRESENT]
    seen: dict[str, set[pa.DataType]] = {}
    for schema in schemas:
        for f in schema:
            if f.name not in seen and f.name not in order:
                order.append(f.name)
            t = _canonical(f.type)
            if not pa.types.is_null(t):  # an all-null column says nothing about the type
                seen.setdefault(f.name, set()).add(t)
    fields = []
    for name in order:
        types = seen.get(name, set())
        if name in pinned:
            t = pinned[name]
        elif len(types) == 1:
            t = next(iter(types))
        else:  # conflicting (or no) types: text, as OpenObserve widens them
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _cast_column(col: pa.ChunkedArray, t: pa.DataType, name: str) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if col.type == t:
        return col
    if pa.types.is_string(t) and pa.types.is_boolean(col.type):
        # Arrow casts booleans to "true"/"false", as OpenObserve stores them; keep explicit.
        return pc.if_else(col, "true", "false").cast(t)
    try:
        return pc.cast(col, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"column {name!r} of type {col.type} cannot be cast to {t}: {exc}") from exc


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast ``table`` to ``schema`` by name, adding missing columns as nulls."""
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            arrays.append(_cast_column(table.column(f.name), f.type, f.name))
        else:
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, f.type)], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def normalise(tables: Sequence[pa.Table], stream_type: str) -> pa.Table:
    """Concatenate per-file tables of one stream under one normalised schema."""
    schema = target_schema((t.schema for t in tables), stream_type)
    if not tables:
        return schema.empty_table()
    return pa.concat_tables([conform(t, schema) for t in tables])


def ensure_columns(table: pa.Table, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """Add absent optional columns as typed nulls (for consumers whose SQL names them)."""
    for name, t in columns.items():
        if name not in table.column_names:
            table = table.append_column(pa.field(name, t), pa.nulls(table.num_rows, t))
    return table


def _json_scalar_type(values: list[Any]) -> pa.DataType:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.null()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64() if all(-(2**63) <= v < 2**63 for v in values if v is not None) else pa.uint64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _as_text(v: Any) -> str | None:
    import json

    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(v, sort_keys=True)


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Flattened JSON rows (API hits) to a table; a column with mixed JSON types becomes text."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays, fields = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        t = _json_scalar_type(values)
        if pa.types.is_string(t):
            values = [_as_text(v) for v in values]
        arrays.append(pa.array(values, type=t))
        fields.append(pa.field(name, t))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
