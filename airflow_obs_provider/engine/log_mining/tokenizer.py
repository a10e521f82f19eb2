"""Split masked text into tokens that Drain compares position by position.

Punctuation that glues names to values (``=``, ``:``, ``,``, ``;``, brackets and quotes) becomes
tokens of its own so ``uid=0`` and ``uid=1`` differ in one position, not in the whole token.
Each token remembers whether whitespace preceded it, so templates read like the original line.
"""

from __future__ import annotations

import re

VAR = "<*>"
# a few plain words between double quotes are one value (tag="View Lock" is tag="RILJ_ACK_WL" with
# another value, not a longer message); quoted text holding masks or punctuation is split as usual
_QUOTED_WORDS = r'(?<=")[^\s"<>=,;:()\[\]{}]+(?: [^\s"<>=,;:()\[\]{}]+)+(?=")'
_WORD_RE = rf"""{_QUOTED_WORDS}|[=,;:()\[\]{{}}"']|[^\s=,;:()\[\]{{}}"']+"""
_WORD = re.compile(_WORD_RE)
_TOKEN = re.compile(rf"(\s*)({_WORD_RE})")  # the same words with the spacing before each
_PLACEHOLDER = re.compile(r"<([A-Z_]+)>")
_HEX_WORD = re.compile(r"[a-f]{8,}|[A-F]{8,}")
# a word that ends in a number names a thing (SOCKS5, ssh2, eth0, IPv6, http2, dn228): a constant,
# unlike ids where the digits sit inside or mix with letters (v2.app, df0798e, blk_0) or that are
# hex numbers (c0, bffedcf0)
_NUMBERED_WORD = re.compile(r"(?![0-9a-fA-F]+$)[A-Za-z]+0")
_BOOLEANS = frozenset({"true", "false", "True", "False", "TRUE", "FALSE"})


class Tokens:
    """A tokenised line. ``kinds`` and ``glue`` are only read for the first line of each distinct
    key (most lines of a batch share a key with an earlier one), so both are worked out on demand."""

    __slots__ = ("_glue", "_kinds", "_text", "_words", "key")

    def __init__(self, key: tuple[str, ...], words: list[str], text: str) -> None:
        self.key = key  # constants as written, every variable as VAR: what Drain and grouping see
        self._words = words
        self._text = text
        self._kinds: tuple[str, ...] | None = None
        self._glue: tuple[bool, ...] | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """Per position: "" for a constant, else the variable's kind (NUM, IP, * ...)."""
        if self._kinds is None:
            self._kinds = tuple(map(_kind_of, self._words))
        return self._kinds

    @property
    def glue(self) -> tuple[bool, ...]:
        """Per position: whether whitespace came before the token."""
        if self._glue is None:
            spaces = [bool(space) for space, _ in _TOKEN.findall(self._text)]
            if len(spaces) > len(self.key):  # capped: the tail token follows a space
                spaces = spaces[: len(self.key) - 1] + [True]
            self._glue = tuple(spaces)
        return self._glue


def _kind(token: str) -> str:
    """'' when the token is a constant word, else the kind of variable it is."""
    if "<" in token:
        m = _PLACEHOLDER.fullmatch(token)
        if m:
            return m.group(1)
        if _PLACEHOLDER.search(token):
            return "*"
    if "0" in token:  # the text is digit-normalised: any digit shows up as "0"
        if token in ("0", "-0", "0.0", "-0.0", "+0"):
            return "NUM"
        return "" if _NUMBERED_WORD.fullmatch(token) else "*"
    if token in _BOOLEANS:
        return "BOOL"
    if _HEX_WORD.fullmatch(token):  # ids that happen to have no digit ("faccfccf"); no word is that long
        return "HEX"
    return ""


class _WordCache(dict[str, str]):
    """word -> its key token (the word, or VAR), filled on first sight, with the word's kind kept in
    :data:`_KINDS`. Lines repeat the same words endlessly: looking them up (``map`` over
    ``dict.__getitem__`` runs at C speed) beats classifying every word of every line again."""

    def __missing__(self, word: str) -> str:
        kind = _kind(word) if ("0" in word or "<" in word or word in _BOOLEANS or len(word) >= 8) else ""
        _KINDS[word] = kind
        token = self[word] = VAR if kind else word
        return token


_KEYS = _WordCache()
_KINDS: dict[str, str] = {}


def _kind_of(word: str) -> str:
    """The kind :class:`_WordCache` recorded for ``word`` (again, if the caches were cleared since)."""
    kind = _KINDS.get(word)
    if kind is None:
        _KEYS.__missing__(word)
        kind = _KINDS[word]
    return kind


_CACHE_LIMIT = 200_000  # distinct ids without digits would grow the caches forever: start over past this


def tokenize(masked: str, max_tokens: int) -> Tokens:
    if len(_KEYS) > _CACHE_LIMIT:  # between lines, so a line never sees half a cache
        _KEYS.clear()
        _KINDS.clear()
    words = _WORD.findall(masked)
    if len(words) > max_tokens:
        words = words[: max_tokens - 1] + ["<TAIL>"]
    return Tokens(tuple(map(_KEYS.__getitem__, words)), words, masked)


def shown_word(token: str) -> str:
    """How a constant reads in a template: a numbered word's digits were normalised away ("ssh0"
    stands for ssh1 and ssh2 alike), so they show as a number placeholder ("ssh<NUM>")."""
    return token[:-1] + "<NUM>" if "0" in token and _NUMBERED_WORD.fullmatch(token) else token


def render(tokens: tuple[str, ...], glue: tuple[bool, ...]) -> str:
    """Join tokens back into text with the original spacing (a single space where there was any)."""
    parts: list[str] = []
    for i, (tok, space) in enumerate(zip(tokens, glue, strict=True)):
        if space and i:
            parts.append(" ")
        parts.append(tok)
    return "".join(parts)
