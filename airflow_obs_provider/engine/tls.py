"""TLS verification settings of the OpenObserve API, shared by the hook and the engine.

A module of its own (no pyarrow, no Airflow) so the hook, which Airflow imports to draw
connection forms, stays light.
"""

from __future__ import annotations

from typing import Any

_FALSE_WORDS = {"false", "0", "no", "off"}
_TRUE_WORDS = {"true", "1", "yes", "on"}


def parse_verify(value: Any) -> bool | str:
    """``verify_ssl`` / ``OO_API_VERIFY`` as requests takes it: a bool, or the path of a CA bundle."""
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in _FALSE_WORDS:
        return False
    if text.lower() in _TRUE_WORDS or not text:
        return True
    return text
