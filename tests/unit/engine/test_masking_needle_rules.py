"""mask_text with the needle bit set computed in DuckDB gives exactly what mask_text finds alone."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_obs_provider.engine.aggregate.duck import connect_duckdb
from airflow_obs_provider.engine.masking import _RULES, mask_text, needle_rules_sql

# pieces that trigger each rule (and near misses), mixed with plain words and odd characters
_SECRET_PIECES = [
    "password=hunter2", "PassWord: s3cr3t", "db_pwd='a b'", "token=abc", '"client_secret": "xyz"', "'api_key': 'k1'",
    "Authorization: Bearer abcdef.ghijkl", "bearer  xyz123", "Basic dXNlcjpwYXNzd29yZA==", "basic auth",
    "eyJhbGciOiJIUzI1.eyJzdWIiOiIx.SflKxwRJ", "AKIAIOSFODNN7EXAMPLE", "<AWS_KEY> wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYab",
    "AIza" + "x" * 35, "ghp_" + "a" * 36, "github_pat_" + "b" * 41, "xoxb-1234567890-abc", "sk_live_abcdefghijk",
    "sk-" + "c" * 24, "glpat-" + "d" * 22, "jane.doe@example.com", "postgres://app:pa55@db:5432/x",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "session_id=42", "cookie: c=1",
    "x-api-key=Q", "signature=abc", "credentials: none", "\u212aey=v",  # the Kelvin sign lower-cases to "k"
    "redis://:pw@h", "u:p@ss@h/db", "mysql -uroot -pPW", "sshpass -p PW", "redis-cli -a PW", "ldapadd -w PW",
    "smbclient -U u%PW", "unzip -P PW", "curl -u a:PW", "--token X", "hooks.slack.com/services/T/B/X",
    "https://h/api/webhooks/1/X", "?sig=X&key=Y", "password=hun&Tail", "the password is X", "login with pass X",
]
_WORDS = ["user", "login", "failed", "GH", "key", "KEY", "secret", "Pass", "auth", "0", "12ms", "@", "'", '"',
          "://", "_test_", "İ", "é", "٣", "ß", "=", ":", ";"]
_texts = st.lists(st.one_of(st.sampled_from(_SECRET_PIECES), st.sampled_from(_WORDS), st.text(max_size=12)),
                  max_size=8).flatmap(lambda parts: st.sampled_from([" ", "", ", "]).map(lambda sep: sep.join(parts)))


def _duckdb_rules(texts: list[str]) -> list[int | None]:
    con = connect_duckdb()
    try:
        con.register("texts", pa.table({"text": pa.array(texts, pa.string())}))
        by_text = dict(con.execute(needle_rules_sql("texts", "text")).fetchall())
    finally:
        con.close()
    return [by_text[text] for text in texts]


def _python_rules(text: str) -> int:
    """The straightforward reference: bit i set when one of rule i's needles is in the lower-cased text."""
    low = text.lower()
    return sum(1 << bit for bit, (_, _, needles) in enumerate(_RULES) if any(n in low for n in needles))


@settings(max_examples=300, deadline=None)
@given(st.lists(_texts, min_size=1, max_size=20))
def test_duckdb_rules_mask_exactly_like_the_python_checks(texts: list[str]) -> None:
    for text, rules in zip(texts, _duckdb_rules(texts), strict=True):
        if text.isascii():
            assert rules == _python_rules(text)
        else:
            assert rules is None  # Python and DuckDB lower-case some non-ASCII letters differently
        assert mask_text(text, rules) == mask_text(text)


def test_every_secret_piece_is_masked_the_same_way_through_duckdb_rules() -> None:
    rules = _duckdb_rules(_SECRET_PIECES)
    for text, bits in zip(_SECRET_PIECES, rules, strict=True):
        assert mask_text(text, bits) == mask_text(text)
    assert mask_text("password=hunter2", rules[0]) == "password=<SECRET>"


def test_non_ascii_text_gets_no_rules_and_is_checked_in_python() -> None:
    text = "\u212aey=v"  # Python lower-cases the Kelvin sign to an ASCII "k": "key" is a needle here
    assert _python_rules(text) != 0
    (rules,) = _duckdb_rules([text])
    assert rules is None


@pytest.mark.parametrize("text", ["GET /health 200 in 3ms", "", "user 0 logged in"])
def test_text_without_needles_has_no_rules_and_stays_as_it_is(text: str) -> None:
    assert _duckdb_rules([text]) == [0]
    assert mask_text(text, 0) == text
