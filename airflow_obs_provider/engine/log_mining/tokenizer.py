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

    @classmethod
    def built(cls, key: tuple[str, ...], kinds: tuple[str, ...], glue: tuple[bool, ...]) -> Tokens:
        """Tokens whose kinds and glue are known already (a key rewritten from another)."""
        tokens = cls(key, list(key), "")
        tokens._kinds, tokens._glue = kinds, glue
        return tokens

    @property
    def kinds(self) -> tuple[str, ...]:
        """Per position: "" for a constant, else the variable's kind (NUM, IP, * ...)."""
        if self._kinds is None:
            try:  # tokenize() recorded every word's kind: looked up at C speed
                self._kinds = tuple(map(_KINDS.__getitem__, self._words))
            except KeyError:  # the caches were cleared since this line was tokenised
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


# separators that end a word without belonging to the value in it ("LOCAL(0)," is the value "LOCAL(0)")
_TRAILING_SEPARATORS = frozenset({",", ";", ":"})
# brackets and quotes around a value belong to the text, not to the value, unless both are in the word
_OPENERS = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}
_CLOSERS = {")": "(", "]": "[", "}": "{", '"': '"', "'": "'"}
_WORD_START = re.compile(r"\w").match
_MIN_WORDS_LEFT = 2
# a variable next to punctuation in a key joined by "\x1f": the cheap sign that a word of the line
# may hold a value and more (what :func:`value_words_as_one` looks at); at C speed, per line
GLUED_VALUE = re.compile(r"(?:^|\x1f)<\*>\x1f[,;:()\[\]{}\"']|[,;:()\[\]{}\"']\x1f<\*>(?:\x1f|$)")


def value_words_as_one(tokens: Tokens) -> Tokens | None:
    """``tokens`` with every whitespace-delimited word that holds a variable and something else, and
    no ``=``, written as one variable; None when no word changes. Trailing ``,``/``;``/``:`` and
    brackets or quotes that open or close outside the word stay tokens of their own.

    The same value takes different shapes: "synchronized to 10.0.0.5, stratum 3" and "synchronized
    to LOCAL(0), stratum 10", "<host>:443 open" and "wpad:80 open". Tokenised, those words give keys
    of different lengths that Drain never compares. The miner tries this form of a key only when
    the key itself joins no cluster, so "uid=0" keeps its "uid" and a value in its usual shape its
    punctuation; and only when at least two words stay constant, so a message that is one word
    with a value in it ("setLightsOn(true)", "cancelNotification,index:0") is not taken for one."""
    key, glue = tokens.key, tokens.glue
    if VAR not in key:
        return None
    kinds = tokens.kinds
    out_key: list[str] = []
    out_kinds: list[str] = []
    out_glue: list[bool] = []
    changed = False
    n = len(key)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and not glue[stop]:
            stop += 1
        begin, end = start, stop
        while end - 1 > begin:
            tok = key[end - 1]
            if tok in _TRAILING_SEPARATORS or (tok in _CLOSERS and _CLOSERS[tok] not in key[begin:end - 1]):
                end -= 1
            else:
                break
        while begin + 1 < end and key[begin] in _OPENERS and _OPENERS[key[begin]] not in key[begin + 1:end]:
            begin += 1
        word = key[begin:end]
        if end - begin > 1 and VAR in word and "=" not in word:
            changed = True
            out_key.extend(key[start:begin])
            out_kinds.extend(kinds[start:begin])
            out_glue.extend(glue[start:begin])
            out_key.append(VAR)
            out_kinds.append("*")
            out_glue.append(glue[begin])
            start = end
        out_key.extend(key[start:stop])
        out_kinds.extend(kinds[start:stop])
        out_glue.extend(glue[start:stop])
        start = stop
    # the words that stay must still say what the message is ("setLightsOn(true)" is no value)
    if not changed or sum(1 for tok in out_key if tok != VAR and _WORD_START(tok)) < _MIN_WORDS_LEFT:
        return None
    return Tokens.built(tuple(out_key), tuple(out_kinds), tuple(out_glue))


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
