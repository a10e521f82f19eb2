"""Named masks applied before mining: variables become ``<KIND>`` placeholders.

Every mask works on *digit-normalised* text (each run of digits replaced by ``0``, see
:func:`digit_key`). That is deliberate: the miner deduplicates lines on their digit-normalised
form before doing any other work, so masking must give the same answer for every line that
shares that form. Patterns therefore never depend on how many digits a number has.
"""

from __future__ import annotations

import re

from airflow_obs_provider.engine.masking import mask_text

_DIGIT_RUN = re.compile(r"\d+")

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_TLD = (r"(?:com|net|org|edu|gov|mil|int|io|hk|cn|uk|de|jp|ru|fr|br|in|info|biz|co|us|eu|au|ca|nl"
        r"|local|localdomain|internal|lan|corp|cloud|dev|app)")

# (kind, pattern), applied in order: wide shapes (URLs, timestamps) before the pieces they contain.
MASKS: list[tuple[str, re.Pattern[str]]] = [
    ("URL", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")),
    ("IP", re.compile(r"/?\b0\.0\.0\.0(?::0)?\b")),
    ("TS", re.compile(r"\b0-0-0[T ]0:0(?::0)?(?:[.,]0)?(?:Z|[+-]0(?::?0)?)?\b")),
    ("TS", re.compile(rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+0(?:,?\s+0)?\s+0:0:0(?:[.,]0)?(?:\s+[A-Z]{{3,4}})?(?:\s+0)?\b")),
    ("TS", re.compile(rf"\b0[/ -]{_MONTH}[/ -]0[: ]0:0:0(?:\s*[+-]0)?")),
    ("DATE", re.compile(r"\b0[-/]0[-/]0\b")),
    ("IP", re.compile(r"\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:%\w+)?(?=[\s,;)\]]|$)")),
    ("HOST", re.compile(rf"\b(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+{_TLD}\b(?::0)?")),
    ("PATH", re.compile(r"\b[A-Za-z]:\\[^\s\"'<>]*")),
    ("PATH", re.compile(r"(?<![\w/.\-<>])(?:\.{1,2})?(?:/[\w.\-+@%~$:]+)+/?")),
    ("TIME", re.compile(r"\b0:0(?::0)?(?:[.,]0)?\b")),
    ("HEX", re.compile(r"\b0[xX][0-9a-fA-F]+\b")),
    ("SIZE", re.compile(r"\b0(?:\.0)?(?:\s?(?:[KMGTPE]i?B|bytes?)|[KMGTPE]i?B|B|[kKMG])\b")),
    ("DUR", re.compile(r"(?:<\s?)?\b0(?:\.0)?\s?(?:ms|us|µs|ns|s|secs?|seconds?|msecs?|mins?|minutes?|hrs?|hours?|days?)\b")),
]

# "<SIZE> (<SIZE>)": one quantity written twice ("0 bytes (0.0 KB)") is one variable.
_REPEATED_QUANTITY = re.compile(r"<(SIZE|DUR)>\s*\(<(?:SIZE|DUR)>\)")


def digit_key(line: str) -> str:
    """The line with every run of digits replaced by ``0``: the deduplication key of the miner."""
    return _DIGIT_RUN.sub("0", line)


def apply_masks(normalised: str) -> str:
    """Secrets first (so they never reach a template), then the named variable masks."""
    text = mask_text(normalised)
    for kind, pattern in MASKS:
        text = pattern.sub(f"<{kind}>", text)
    if "(<" in text:
        text = _REPEATED_QUANTITY.sub(r"<\1>", text)
    return text
