"""Secret masking shared by the whole product: label dictionaries and free text.

Anything we store that came from a user's telemetry (resource labels, log samples,
pattern templates) goes through here first. The replacement markers are
angle-bracketed words (``<SECRET>``, ``<JWT>``, ``<EMAIL>`` ...) so that the log
pattern miner treats them as already-masked variables, and so users can see
that something was removed rather than wondering why a value is empty.

Masking is conservative on purpose: it is better to hide a harmless value that
sits under a key called ``token`` than to store a real credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET = "<SECRET>"

# Words that name a secret wherever they appear in a key (labels, key=value text, JSON):
# "db_password=" matches at "password".
_SENSITIVE_WORD = (
    r"(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key"
    r"|client[_-]?secret|credentials?|auth(?:orization)?|session[_-]?id|cookie|signature|x-api-key|pass(?:phrase)?)"
)
# a whole key name: the same words after any prefix
_SENSITIVE_KEY_RE = re.compile(rf"^[A-Za-z0-9_.-]*?{_SENSITIVE_WORD}$", re.IGNORECASE)
_SENSITIVE_WORD_RE = re.compile(_SENSITIVE_WORD, re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")


def _is_secret_pair(key: str, value: str) -> bool:
    """A key=value pair whose key names a secret and whose value is not already a marker."""
    return bool(_SENSITIVE_WORD_RE.search(key)) and not _PLACEHOLDER.fullmatch(value.strip("\"'"))


# Ordered: the specific shapes first so their marker says what was there.
_TEXT_RULES: list[tuple[re.Pattern[str], Any]] = [
    # PEM blocks (private keys, certificates with keys)
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
     "<PRIVATE_KEY>"),
    # JSON Web Tokens: three base64url parts, the header always starts with eyJ ('{"')
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "<JWT>"),
    # HTTP auth schemes: keep the scheme, hide the credential
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1\2" + SECRET),
    # Basic/Digest credentials are base64-ish; "basic authentication" (lower-case words) is left alone
    (re.compile(r"\b(Basic|basic|BASIC)(\s+)(?=[A-Za-z0-9+/]*[A-Z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"), r"\1\2" + SECRET),
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + SECRET + "@"),
    # Cloud and SaaS key formats with recognisable prefixes
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), "<AWS_KEY>"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "<API_KEY>"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "<API_KEY>"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "<API_KEY>"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "<API_KEY>"),
    (re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}\b"), "<API_KEY>"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "<API_KEY>"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), "<API_KEY>"),
    # JSON / quoted forms: "password": "x"  'token': 'y'
    (re.compile(r"""(["'])([\w.-]++)\1(\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}\]]+)"""),
     lambda m: f'{m[1]}{m[2]}{m[1]}{m[3]}"{SECRET}"' if _is_secret_pair(m[2], m[4]) else m[0]),
    # key=value / key: value forms, quoted or bare values (password=hunter2, secret: abc, token="x y")
    (re.compile(r"""(?<![\w.-])([\w.-]++)(\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&'"}\])]+)"""),
     lambda m: f"{m[1]}{m[2]}{SECRET}" if _is_secret_pair(m[1], m[3]) else m[0]),
    # AWS secret access keys have no prefix; only catch them beside their usual names (above) or
    # as a 40-char base64 run next to an access key id, which is how they leak in config dumps.
    (re.compile(r"(<AWS_KEY>[\s,;:=\"']+)[A-Za-z0-9/+]{40}\b"), r"\1" + SECRET),
    # e-mail addresses (personal data)
    (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), "<EMAIL>"),
]

# A rule only runs when one of its needles is in the lower-cased text: most log lines contain
# none of them, so masking usually costs a few substring checks.
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "session", "cookie", "signature")
_AWS_KEY_PREFIXES = ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa")
_RULE_NEEDLES: list[tuple[str, ...]] = [
    ("begin",), ("eyj",), ("bearer",), ("basic",), ("://",),
    _AWS_KEY_PREFIXES, ("aiza",), ("gh",), ("github_pat",),
    ("xox",), ("_live_", "_test_"), ("sk-",), ("glpat",), ("\"", "'"), _KEY_WORDS,
    # the secret beside a key id: the <AWS_KEY> marker is written by the key-id rule in this same
    # pass, so the original text shows the key id's prefix, not the marker
    (*_AWS_KEY_PREFIXES, "<aws_key>"), ("@",),
]
assert len(_RULE_NEEDLES) == len(_TEXT_RULES)
_RULES = [(p, r, n) for (p, r), n in zip(_TEXT_RULES, _RULE_NEEDLES, strict=True)]


def mask_text(text: str, rules: int | None = None) -> str:
    """Return ``text`` with credentials, keys, tokens and e-mail addresses replaced by markers.

    ``rules``: the bit set :func:`needle_rules_sql` computed for this very text in DuckDB (bit i:
    rule i's needles occur), which skips the needle checks; None checks here."""
    if not text:
        return text
    if rules is None:
        low = text.lower()
        for pattern, replacement, needles in _RULES:
            for needle in needles:
                if needle in low:
                    text = pattern.sub(replacement, text)
                    break
        return text
    bit = 0
    while rules >> bit:  # most texts hold no needle: rules == 0 returns at once
        if rules >> bit & 1:
            pattern, replacement, _ = _RULES[bit]
            text = pattern.sub(replacement, text)
        bit += 1
    return text


def needle_rules_sql(relation: str, column: str) -> str:
    """DuckDB query: ``column`` of ``relation`` (a table or a parenthesised query) and ``rules``, the
    bit set of the rules :func:`mask_text` would run on it (pass it as ``rules``), vectorised instead
    of ~40 substring checks per text in Python. NULL for non-ASCII text: Python lower-cases some
    other characters to ASCII letters (the Kelvin sign to ``k``), so only for ASCII are both
    lower-casings the same. ``relation`` and ``column`` are the caller's own SQL, never user data."""
    def quoted(needle: str) -> str:
        return "'" + needle.replace("'", "''") + "'"

    terms = " + ".join(f"(CASE WHEN {' OR '.join(f'contains(_low, {quoted(n)})' for n in needles)} "
                       f"THEN {1 << bit} ELSE 0 END)" for bit, (_, _, needles) in enumerate(_RULES))
    return (f"SELECT {column}, CASE WHEN _ascii THEN CAST({terms} AS INTEGER) END AS rules "  # noqa: S608
            f"FROM (SELECT {column}, lower({column}) AS _low, strlen({column}) = length({column}) AS _ascii "
            f"FROM {relation})")


def is_sensitive_key(key: str) -> bool:
    """True when a label/field name says its value is a secret (``db_password``, ``X-Api-Key`` ...)."""
    return bool(_SENSITIVE_KEY_RE.match(key.strip()))


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return mask_labels(value)
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


def mask_labels(labels: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``labels`` safe to store: values under secret-looking keys become ``<SECRET>``,
    other string values are passed through :func:`mask_text`; nested dicts and lists are handled too."""
    masked: dict[str, Any] = {}
    for key, value in labels.items():
        if isinstance(key, str) and is_sensitive_key(key) and value not in (None, ""):
            masked[key] = SECRET if not isinstance(value, Mapping) else mask_labels(value)
        else:
            masked[key] = _mask_value(value)
    return masked
