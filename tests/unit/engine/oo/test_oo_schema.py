from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_obs_provider.engine.oo.schema import (
    SchemaError,
    check_timestamp_column,
    ensure_columns,
    normalise,
    rows_to_table,
    target_schema,
    timestamp_unit_problem,
)


def test_conflicting_column_types_are_widened_to_text_and_others_kept():
    a = pa.table({"_timestamp": pa.array([1], pa.int64()), "code": pa.array([200], pa.int64()), "x": [1.5]})
    b = pa.table({"_timestamp": pa.array([2], pa.int64()), "code": ["404"], "x": [2.5], "only_b": [True]})
    out = normalise([a, b], "logs")
    assert out.schema.field("code").type == pa.string()
    assert out.column("code").to_pylist() == ["200", "404"]
    assert out.schema.field("x").type == pa.float64()
    assert out.column("only_b").to_pylist() == [None, True]


def test_pinned_trace_columns_get_their_contract_types():
    spans = pa.table({
        "_timestamp": pa.array([5], pa.int64()),
        "start_time": pa.array([5_000], pa.uint64()),
        "end_time": pa.array([9_000], pa.uint64()),
        "duration": pa.array([4], pa.int32()),
        "span_kind": pa.array([2], pa.int64()),  # a writer that stored the kind as a number
    })
    out = normalise([spans], "traces")
    assert out.schema.field("start_time").type == pa.int64()
    assert out.schema.field("duration").type == pa.int64()
    assert out.column("span_kind").to_pylist() == ["2"]


def test_numeric_and_text_severity_both_become_text():
    text = pa.table({"_timestamp": pa.array([1], pa.int64()), "severity": ["ERROR"]})
    num = pa.table({"_timestamp": pa.array([2], pa.int64()), "severity": pa.array([17], pa.int64())})
    assert normalise([num], "logs").schema.field("severity").type == pa.string()
    assert normalise([text, num], "logs").column("severity").to_pylist() == ["ERROR", "17"]


def test_all_null_columns_do_not_force_widening():
    a = pa.table({"_timestamp": pa.array([1], pa.int64()), "n": pa.nulls(1)})
    b = pa.table({"_timestamp": pa.array([2], pa.int64()), "n": pa.array([7], pa.int64())})
    assert target_schema([a.schema, b.schema], "logs").field("n").type == pa.int64()


def test_uncastable_pinned_column_is_a_clear_error():
    bad = pa.table({"_timestamp": ["yesterday"]})
    with pytest.raises(SchemaError, match="_timestamp"):
        normalise([bad], "logs")


def test_empty_read_still_has_a_timestamp_column():
    assert normalise([], "metrics").column_names == ["_timestamp"]


def test_rows_to_table_types_json_values_and_widens_mixed_ones():
    t = rows_to_table([{"_timestamp": 1, "v": 1, "s": "a", "m": 1}, {"_timestamp": 2, "v": 2.5, "m": "x", "b": True}])
    assert t.schema.field("v").type == pa.float64()
    assert t.column("m").to_pylist() == ["1", "x"]
    assert t.column("s").to_pylist() == ["a", None]
    assert t.schema.field("b").type == pa.bool_()


def test_ensure_columns_adds_typed_nulls_only_when_absent():
    t = pa.table({"_timestamp": pa.array([1], pa.int64()), "db_name": ["x"]})
    out = ensure_columns(t, {"db_name": pa.string(), "db_system": pa.string()})
    assert out.column("db_name").to_pylist() == ["x"] and out.column("db_system").to_pylist() == [None]


@pytest.mark.parametrize(("lo", "unit"), [
    (1_714_557_730, "seconds"), (1_714_557_730_000, "milliseconds"), (1_714_557_730_000_000_000, "nanoseconds"),
    (0, "no time unit"),
])
def test_timestamps_in_another_unit_than_microseconds_are_named(lo: int, unit: str) -> None:
    assert unit in (timestamp_unit_problem(lo, lo + 1) or "")
    with pytest.raises(SchemaError, match=unit):
        check_timestamp_column(pa.table({"_timestamp": pa.array([lo, lo + 1], pa.int64())}))


def test_microseconds_and_empty_tables_pass_the_unit_check() -> None:
    assert timestamp_unit_problem(1_714_557_730_000_000, 1_714_557_790_000_000) is None
    check_timestamp_column(pa.table({"_timestamp": pa.array([1_714_557_730_000_000], pa.int64())}))
    check_timestamp_column(pa.table({"_timestamp": pa.array([], pa.int64())}))


def test_timestamps_as_text_are_named_with_an_example() -> None:
    with pytest.raises(SchemaError, match=r"_timestamp has type string \(e.g. '2024-05-01T10:00:00Z'\)"):
        check_timestamp_column(pa.table({"_timestamp": pa.array(["2024-05-01T10:00:00Z"])}))
