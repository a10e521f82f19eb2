"""Severity from the column (text or OTLP number) or from the message."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.log_mining.severity import is_error, most_severe, parse_severity, severity_of


@pytest.mark.parametrize(
    ("value", "level"),
    [("17", "ERROR"), (17, "ERROR"), ("16", "WARN"), (9, "INFO"), ("21", "FATAL"), ("24", "FATAL"), ("1", "TRACE"),
     ("Warning", "WARN"), ("err", "ERROR"), ("CRIT", "CRITICAL"), ("emerg", "EMERGENCY"), ("", None),
     ("banana", None), ("0", None), ("99", None), (None, None)],
)
def test_parse_severity(value: object, level: str | None) -> None:
    assert parse_severity(value) == level  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "level"),
    [("2024 ERROR disk full", "ERROR"), ('{"level":"warn","msg":"x"}', "WARN"), ("level=debug x", "DEBUG"),
     ("java.io.IOException: Connection reset", "ERROR"), ("[FATAL] out of memory", "FATAL"),
     ("all good here", None), ("an error happened", None)],
)
def test_infer_from_message(message: str, level: str | None) -> None:
    assert severity_of(None, message) == level


def test_column_wins_over_message() -> None:
    assert severity_of("INFO", "ERROR in text") == "INFO"
    assert severity_of("nonsense", "ERROR in text") == "ERROR"


def test_error_and_worse() -> None:
    assert [is_error(x) for x in ("WARN", "ERROR", "CRITICAL", "FATAL", "ALERT", "EMERGENCY", None)] == [
        False, True, True, True, True, True, False]
    assert most_severe("WARN", "ERROR") == "ERROR" and most_severe(None, "INFO") == "INFO"
