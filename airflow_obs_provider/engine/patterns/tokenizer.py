"""Split masked text into tokens that Drain compares position by position.

Punctuation that glues names to values (``=``, ``:``, ``,``, ``;``, brackets and quotes) becomes
tokens of its own so ``uid=0`` and ``uid=1`` differ in one position, not in the whole token.
Each token remembers whether whitespace preceded it, so templates read like the original line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

VAR = "<*>"
_TOKEN = re.compile(r"(\s*)([=,;:()\[\]{}\"']|[^\s=,;:()\[\]{}\"']+)")
_PLACEHOLDER = re.compile(r"<([A-Z_]+)>")
_HEX_WORD = re.compile(r"[a-f]{8,}|[A-F]{8,}")
_BOOLEANS = frozenset({"true", "false", "True", "False", "TRUE", "FALSE"})


class Tokens(NamedTuple):
    key: tuple[str, ...]  # constants as written, every variable as VAR: what Drain and grouping see
    kinds: tuple[str, ...]  # per position: "" for a constant, else the variable's kind (NUM, IP, *...)
    glue: tuple[bool, ...]  # per position: whitespace before the token


def _kind(token: str) -> str:
    """'' when the token is a constant word, else the kind of variable it is."""
    if "<" in token:
        m = _PLACEHOLDER.fullmatch(token)
        if m:
            return m.group(1)
        if _PLACEHOLDER.search(token):
            return "*"
    if "0" in token:  # the text is digit-normalised: any digit shows up as "0"
        return "NUM" if token in ("0", "-0", "0.0", "-0.0", "+0") else "*"
    if token in _BOOLEANS:
        return "BOOL"
    if _HEX_WORD.fullmatch(token):  # ids that happen to have no digit ("faccfccf"); no word is that long
        return "HEX"
    return ""


def tokenize(masked: str, max_tokens: int) -> Tokens:
    pairs = _TOKEN.findall(masked)
    if not pairs:
        return Tokens((), (), ())
    if len(pairs) > max_tokens:
        pairs = pairs[: max_tokens - 1] + [(" ", "<TAIL>")]
    spaces, words = zip(*pairs, strict=True)
    # most tokens are plain words: only call _kind on those that might be variables
    kinds = tuple([_kind(w) if ("0" in w or "<" in w or w in _BOOLEANS or len(w) >= 8) else "" for w in words])
    key = tuple([VAR if k else w for w, k in zip(words, kinds, strict=True)])
    return Tokens(key, kinds, tuple(map(bool, spaces)))


def render(tokens: tuple[str, ...], glue: tuple[bool, ...]) -> str:
    """Join tokens back into text with the original spacing (a single space where there was any)."""
    parts: list[str] = []
    for i, (tok, space) in enumerate(zip(tokens, glue, strict=True)):
        if space and i:
            parts.append(" ")
        parts.append(tok)
    return "".join(parts)
