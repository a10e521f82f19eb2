"""Named masks applied before mining: variables become ``<KIND>`` placeholders.

Every mask works on *digit-normalised* text (each run of digits replaced by ``0``, see
:func:`digit_key`). That is deliberate: the miner deduplicates lines on their digit-normalised
form before doing any other work, so masking must give the same answer for every line that
shares that form. Patterns therefore never depend on how many digits a number has.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from airflow_obs_provider.engine.masking import mask_text

_DIGIT_RUN = re.compile(r"\d+")

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_H = "[0-9a-fA-F]{1,4}"  # one IPv6 group
_TLD = (r"(?:com|net|org|edu|gov|mil|int|io|hk|cn|uk|de|jp|ru|fr|br|in|info|biz|co|us|eu|au|ca|nl"
        r"|local|localdomain|internal|lan|corp|cloud|dev|app)")

Gate = Callable[[str], bool]


def _has(*needles: str) -> Gate:
    return lambda text: any(n in text for n in needles)


def _separators(at_least: int) -> Gate:
    return lambda text: text.count(":") >= at_least or text.count("-") >= at_least


# (placeholder, pattern, gate), applied in order: wide shapes (URLs, timestamps, IPs) before the
# pieces they contain. A pattern only runs when its cheap gate passes: most lines need few.
MASKS: list[tuple[str, re.Pattern[str], Gate]] = [
    ("<URL>", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+"), _has("://")),
    ("<TS>", re.compile(r"\b0-0-0[T ]0:0(?::0)?(?:[.,]0)?(?:Z|[+-]0(?::?0)?)?\b"), _has("0-0-0")),
    ("<TS>", re.compile(rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+0(?:,?\s+0)?\s+0:0:0(?:[.,]0)?(?:\s+[A-Z]{{3,4}})?(?:\s+0)?\b"),
     _has("0:0:0")),
    ("<TS>", re.compile(rf"\b0[/ -]{_MONTH}[/ -]0[: ]0:0:0(?:\s*[+-]0)?"), _has("0:0:0")),
    ("<IP>", re.compile(r"/?\b0\.0\.0\.0(?::0)?\b"), _has("0.0.0.0")),
    ("<IP>", re.compile(rf"(?<![\w:])(?:{_H}(?::{_H})*::(?:{_H}(?::{_H})*)?|::{_H}(?::{_H})*|(?:{_H}:){{7}}{_H})"
                        r"(?:%\w+)?(?![\w:])"), _has("::", ":0:")),
    ("<MAC>", re.compile(r"(?<![\w:])[0-9a-fA-F]{1,2}(?:[:-][0-9a-fA-F]{1,2}){5}(?![\w:])"), _separators(5)),
    ("<HOST>", re.compile(rf"(?<![\w.-])(?:[A-Za-z0-9][A-Za-z0-9-]*+\.)++{_TLD}\b(?::0)?"), _has(".")),
    ("<PATH>", re.compile(r"\b[A-Za-z]:\\[^\s\"'<>]*"), _has(":\\")),
    ("<PATH>", re.compile(r"(?<![\w/.\-<>])(?:\.{1,2})?(?:/[\w.\-+@%~$:]++)++/?"), _has("/")),
]

# Quantities that start at a number, in one pass (the alternatives are tried in this order).
_QUANTITY = re.compile(  # one shared "\b0" prefix lets the regex engine skip quickly to candidates
    r"\b0(?:"
    r"(?P<DATE>[-/]0[-/]0\b)"
    r"|(?P<TIME>:0(?::0)?(?:[.,]0)?\b)"
    r"|(?P<HEX>[xX][0-9a-fA-F]+\b)"
    r"|(?P<SIZE>(?:\.0)?(?:\s?(?:[KMGTPE]i?B|bytes?)|[KMGTPE]i?B|B|[kKMG])\b)"
    r"|(?P<DUR>(?:\.0)?\s?(?:ms|us|µs|ns|s|secs?|seconds?|msecs?|mins?|minutes?|hrs?|hours?|days?)\b))"
)


def _quantity(m: re.Match[str]) -> str:
    return f"<{m.lastgroup}>"


# "<SIZE> (<SIZE>)": one quantity written twice ("0 bytes (0.0 KB)") is one variable;
# "<0 sec" (less than a second) is a duration like any other.
_REPEATED_QUANTITY = re.compile(r"<(SIZE|DUR)>\s*\(<(?:SIZE|DUR)>\)")
_LESS_THAN_DURATION = re.compile(r"<\s?<DUR>")


def digit_key(line: str) -> str:
    """The line with every run of digits replaced by ``0``: the deduplication key of the miner."""
    return _DIGIT_RUN.sub("0", line)


def apply_masks(normalised: str) -> str:
    """Secrets first (so they never reach a template), then the named variable masks."""
    text = mask_text(normalised)
    for placeholder, pattern, gate in MASKS:
        if gate(text):
            text = pattern.sub(placeholder, text)
    if "0" in text:
        text = _QUANTITY.sub(_quantity, text)
    if "(<" in text:
        text = _REPEATED_QUANTITY.sub(r"<\1>", text)
    if "<<" in text or "< <" in text:
        text = _LESS_THAN_DURATION.sub("<DUR>", text)
    return text
