"""Severity levels: from a severity column (text or OTLP number) or, when absent, from the message."""

from __future__ import annotations

import re
from functools import lru_cache

# Ordered least to most severe; count_error counts ERROR and everything after it.
LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRITICAL", "FATAL", "ALERT",
                           "EMERGENCY")
RANK: dict[str, int] = {name: i + 1 for i, name in enumerate(LEVELS)}
ERROR_RANK = RANK["ERROR"]

_SYNONYMS: dict[str, str] = {
    "trace": "TRACE", "finest": "TRACE", "finer": "TRACE", "verbose": "TRACE",
    "debug": "DEBUG", "fine": "DEBUG", "dbg": "DEBUG",
    "info": "INFO", "information": "INFO", "informational": "INFO", "i": "INFO",
    "notice": "NOTICE",
    "warn": "WARN", "warning": "WARN", "w": "WARN",
    "error": "ERROR", "err": "ERROR", "e": "ERROR", "severe": "ERROR", "failure": "ERROR",
    "critical": "CRITICAL", "crit": "CRITICAL",
    "fatal": "FATAL", "f": "FATAL", "panic": "FATAL",
    "alert": "ALERT",
    "emergency": "EMERGENCY", "emerg": "EMERGENCY",
}
# OTLP SeverityNumber: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL
_OTLP = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

# In a message, a level is written in capitals ("ERROR", "[WARN]") or as a level field.
_LEVEL_WORD = re.compile(r"\b(EMERG(?:ENCY)?|ALERT|CRIT(?:ICAL)?|FATAL|PANIC|SEVERE|ERROR|ERR|WARN(?:ING)?"
                         r"|NOTICE|INFO|DEBUG|TRACE)\b")
_LEVEL_FIELD = re.compile(r"""(?i)\b(?:level|severity|lvl|loglevel)["']?\s*[=:]\s*["']?([a-z]+)""")
_EXCEPTION = re.compile(r"\b(?:Traceback \(most recent call last\)|[A-Z]\w*(?:Exception|Error)\b)")


@lru_cache(maxsize=4096)
def parse_severity(value: str | int | float | None) -> str | None:
    """The canonical level of a severity column value, or None when it is empty or unknown."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        number = int(value)
    else:
        text = value.strip()
        if not text:
            return None
        if not text.lstrip("-").isdigit():
            return _SYNONYMS.get(text.lower()) or _SYNONYMS.get(text.lower().rstrip("0123456789"))
        number = int(text)
    if 1 <= number <= 24:
        return _OTLP[(number - 1) // 4]
    return None


def infer_severity(message: str | None) -> str | None:
    """A level written in the message itself ("ERROR ...", "level=warn", a Java exception), or None."""
    if not message:
        return None
    m = _LEVEL_FIELD.search(message)
    if m:
        found = _SYNONYMS.get(m.group(1).lower())
        if found:
            return found
    m = _LEVEL_WORD.search(message)
    if m:
        return _SYNONYMS.get(m.group(1).lower(), m.group(1).upper())
    if _EXCEPTION.search(message):
        return "ERROR"
    return None


def severity_of(severity: str | int | float | None, message: str | None) -> str | None:
    """The column wins; the message is only read when the column says nothing usable."""
    return parse_severity(severity) or infer_severity(message)


def is_error(level: str | None) -> bool:
    return level is not None and RANK.get(level, 0) >= ERROR_RANK


def most_severe(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK.get(a, 0) >= RANK.get(b, 0) else b
