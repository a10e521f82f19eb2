"""The miner fed DuckDB's digit-normalised forms and needle bit sets (what log_mining.window hands it)
gives the same fingerprints, templates and aliases as fed the raw lines."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_obs_provider.devkit.corpora import generate_corpora
from airflow_obs_provider.engine.aggregate.duck import connect_duckdb
from airflow_obs_provider.engine.log_mining.miner import PatternMiner
from airflow_obs_provider.engine.log_mining.window import _form_sql
from airflow_obs_provider.engine.masking import needle_rules_sql

_ODD_LINES = [
    "user ٣٤ logged in from 10.0.0.1", "user 34 logged in from 10.0.0.2", "port １２ open", "port 12 open",
    "login password=hunter2 user=bob", "login password=x9 user=eve", "Authorization: Bearer abc123def456",
    "key AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYab", "mail to a.b@example.com",
    "\u212aey=secret1 set", "\u212aey=secret2 set", "", "   ", "x" * 300 + " 1", "naïve 1 café 22",
]


def _as_log_patterns_hands_them(lines: list[str | None]) -> tuple[list[str], list[int | None]]:
    """DuckDB's form of every line (a null message is '') and the needle bit set of that form."""
    con = connect_duckdb()
    try:
        con.register("lines", pa.table({"i": pa.array(range(len(lines)), pa.int64()),
                                        "line": pa.array(lines, pa.string())}))
        form = _form_sql("coalesce(line, '')")
        forms_sql = f"SELECT i, {form} AS form FROM lines"
        forms = [f for _, f in sorted(con.execute(forms_sql).fetchall())]
        rules = dict(con.execute(needle_rules_sql(f"({forms_sql})", "form")).fetchall())
    finally:
        con.close()
    return forms, [rules[f] for f in forms]


def _compare(batches: list[list[str | None]]) -> None:
    raw, prepared = PatternMiner(), PatternMiner()
    for lines in batches:
        forms, rules = _as_log_patterns_hands_them(lines)
        assert raw.fingerprint_batch(lines) == prepared.fingerprint_batch(forms, digit_normalised=True,
                                                                          secret_rules=rules)
        assert raw.pop_aliases() == prepared.pop_aliases()
    assert raw.templates() == prepared.templates()


def test_corpora_and_odd_lines_get_the_same_fingerprints_templates_and_aliases() -> None:
    lines = [row.line for rows in generate_corpora(300, seed=11).values() for row in rows] + _ODD_LINES
    _compare([lines[0::3], lines[1::3] + [None], lines[2::3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(_ODD_LINES), st.text(max_size=40)), min_size=1, max_size=30),
                min_size=1, max_size=3))
def test_random_lines_get_the_same_fingerprints(batches: list[list[str]]) -> None:
    _compare(batches)


def test_secret_rules_need_normalised_lines_and_one_entry_per_line() -> None:
    with pytest.raises(ValueError, match="secret_rules"):
        PatternMiner().fingerprint_batch(["a 1"], secret_rules=[0])
    with pytest.raises(ValueError, match="secret_rules"):
        PatternMiner().fingerprint_batch(["a 0", "b 0"], digit_normalised=True, secret_rules=[0])
