"""Named masks applied before mining: variables become ``<KIND>`` placeholders.

Every mask works on *digit-normalised* text (each run of digits replaced by ``0``, see
:func:`digit_key`). That is deliberate: the miner deduplicates lines on their digit-normalised
form before doing any other work, so masking must give the same answer for every line that
shares that form. Patterns therefore never depend on how many digits a number has.
"""

from __future__ import annotations

import re

from airflow_obs_provider.engine.masking import mask_text

DIGIT_RUN = re.compile(r"\d+")

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_H = "[0-9a-fA-F]{1,4}"  # one IPv6 group
_TLD = (r"(?:com|net|org|edu|gov|mil|int|io|hk|cn|uk|de|jp|ru|fr|br|in|info|biz|co|us|eu|au|ca|nl"
        r"|local|localdomain|internal|lan|corp|cloud|dev|app)")

# Applied in this order by apply_masks: wide shapes (URLs, timestamps, IPs) before the pieces they
# contain. Each runs only when a cheap test (a substring, a count, a literal-prefixed search) says
# the text may hold one: most lines need few patterns.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_TS_ISO = re.compile(r"\b0-0-0[T ]0:0(?::0)?(?:[.,]0)?(?:Z|[+-]0(?::?0)?)?\b")
_TS_SYSLOG = re.compile(
    rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+0(?:,?\s+0)?\s+0:0:0(?:[.,]0)?(?:\s+[A-Z]{{3,4}})?(?:\s+0)?\b")
_TS_CLF = re.compile(rf"\b0[/ -]{_MONTH}[/ -]0[: ]0:0:0(?:\s*[+-]0)?")
_IPV4 = re.compile(r"/?\b0\.0\.0\.0(?::0)?\b")
_IPV6 = re.compile(rf"(?<![\w:])(?:{_H}(?::{_H})*::(?:{_H}(?::{_H})*)?|::{_H}(?::{_H})*|(?:{_H}:){{7}}{_H})"
                   r"(?:%\w+)?(?![\w:])")
_MAC = re.compile(r"(?<![\w:])[0-9a-fA-F]{1,2}(?:[:-][0-9a-fA-F]{1,2}){5}(?![\w:])")
_HOST = re.compile(rf"(?<![\w.-])(?:[A-Za-z0-9][A-Za-z0-9-]*+\.)++{_TLD}\b(?::0)?")
_TLD_HINT = re.compile(rf"\.{_TLD}\b")  # literal-prefixed: skips the slower host scan on most lines
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\[^\s\"'<>]*")
# a path may carry a query string ("/servers/detail?all_tenants=1&since=..."): it is part of the
# one value, as in a URL (without it, every distinct set of parameters would be another template),
# values masked in it already (a timestamp) included
_PATH = re.compile(r"(?<![\w/.\-<>])(?:\.{1,2})?(?:/[\w.\-+@%~$:]++)++/?(?:\?(?:[^\s\"'<>]|<[A-Z_]+>)+)?")


# Quantities that start at a number, in one pass (the alternatives are tried in this order).
_QUANTITY = re.compile(  # one shared "\b0" prefix lets the regex engine skip quickly to candidates
    r"\b0(?:"
    r"(?P<DATE>[-/]0[-/]0\b)"
    r"|(?P<TIME>:0(?::0)?(?:[.,]0)?\b)"
    r"|(?P<HEX>[xX][0-9a-fA-F]+\b)"
    r"|(?P<SIZE>(?:\.0)?(?:\s?(?:[KMGTPE]i?B|B|bytes?)|[kKMG])\b)"
    r"|(?P<DUR>(?:\.0)?\s?(?:ms|us|µs|ns|s|secs?|seconds?|msecs?|mins?|minutes?|hrs?|hours?|days?)\b))"
)


def _quantity(m: re.Match[str]) -> str:
    return f"<{m.lastgroup}>"


# "<SIZE> (<SIZE>)": one quantity written twice ("0 bytes (0.0 KB)") is one variable;
# "<0 sec" (less than a second) is a duration like any other.
_REPEATED_QUANTITY = re.compile(r"<(SIZE|DUR)>\s*\(<(?:SIZE|DUR)>\)")
_LESS_THAN_DURATION = re.compile(r"<\s?<DUR>")
# "from 1.2.3.4 () at" is "from 1.2.3.4 (host.example.com) at" with the value missing: an empty
# value, so both keep one shape (a call such as "init()" has no space before its brackets)
_EMPTY_BRACKETS = re.compile(r"(?<!\S)\(\)")


def digit_key(line: str) -> str:
    """The line with every run of digits replaced by ``0``: the deduplication key of the miner."""
    return DIGIT_RUN.sub("0", line)


def apply_masks(normalised: str, secret_rules: int | None = None) -> str:
    """Secrets first (so they never reach a template), then the named variable masks.
    ``secret_rules``: :func:`masking.needle_rules_sql`'s bit set for ``normalised``, if known."""
    text = mask_text(normalised, secret_rules)
    if "://" in text:
        text = _URL.sub("<URL>", text)
    if "0-0-0" in text:
        text = _TS_ISO.sub("<TS>", text)
    if "0:0:0" in text:
        text = _TS_CLF.sub("<TS>", _TS_SYSLOG.sub("<TS>", text))
    if "0.0.0.0" in text:
        text = _IPV4.sub("<IP>", text)
    if "::" in text or ":0:" in text:
        text = _IPV6.sub("<IP>", text)
    if text.count(":") >= 5 or text.count("-") >= 5:
        text = _MAC.sub("<MAC>", text)
    if _TLD_HINT.search(text):
        text = _HOST.sub("<HOST>", text)
    if ":\\" in text:
        text = _WIN_PATH.sub("<PATH>", text)
    if "/" in text:
        text = _PATH.sub("<PATH>", text)
    if "0" in text:
        text = _QUANTITY.sub(_quantity, text)
    if "(<" in text:
        text = _REPEATED_QUANTITY.sub(r"<\1>", text)
    if "<<" in text or "< <" in text:
        text = _LESS_THAN_DURATION.sub("<DUR>", text)
    if "()" in text:
        text = _EMPTY_BRACKETS.sub("(<EMPTY>)", text)
    return text
