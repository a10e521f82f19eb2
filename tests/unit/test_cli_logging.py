"""The CLI's log handler masks credentials in messages and tracebacks."""

from __future__ import annotations

import logging
import sys

from airflow_obs_provider.cli import RedactingFilter


def _record(msg: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    return logging.LogRecord("obs", logging.WARNING, __file__, 1, msg, args, sys.exc_info() if exc_info else None)


def test_a_message_with_a_url_password_is_masked() -> None:
    record = _record("retrying %s after %s", "postgresql://app:LogPw1@db/x", "password=LogPw2 refused")
    assert RedactingFilter().filter(record)
    assert "LogPw" not in logging.Formatter().format(record)
    assert "postgresql://app:<SECRET>@db/x" in record.getMessage()


def test_a_traceback_with_a_password_is_masked() -> None:
    try:
        raise ValueError("cannot reach https://etl:TbPw3@oo.example.com")
    except ValueError:
        record = _record("failed", exc_info=True)
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "ValueError" in text and "TbPw3" not in text


def test_a_plain_message_keeps_its_arguments() -> None:
    record = _record("window %s done", "10:00")
    RedactingFilter().filter(record)
    assert record.args == ("10:00",) and record.getMessage() == "window 10:00 done"
