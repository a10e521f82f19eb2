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

import functools
import re
from collections.abc import Mapping
from typing import Any

SECRET = "<SECRET>"

# Words that name a secret wherever they appear in a key (labels, key=value text, JSON):
# "db_password=" matches at "password".
# ("pass" and "auth" only as a whole word part: "passed", "passport", "author" are not secrets)
_SENSITIVE_WORD = (
    r"(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key"
    r"|client[_-]?secret|credentials?|auth(?:orization)?(?![a-z])|session[_-]?id|cookie|signature|x-api-key"
    r"|pass(?:phrase|code|key)?(?![a-z]))"
)
# a whole key name: the same words after any prefix
_SENSITIVE_KEY_RE = re.compile(rf"^[A-Za-z0-9_.-]*?{_SENSITIVE_WORD}$", re.IGNORECASE)
_SENSITIVE_WORD_RE = re.compile(_SENSITIVE_WORD, re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")


def _is_secret_pair(key: str, value: str) -> bool:
    """A key=value pair whose key names a secret and whose value is not already a marker."""
    return bool(_SENSITIVE_WORD_RE.search(key)) and not _PLACEHOLDER.fullmatch(value.strip("\"'"))


# Ordered: the specific shapes first so their marker says what was there. Each rule comes with its
# needles: lower-case substrings one of which is in every text the rule can match (see _RULES).
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "session", "cookie", "signature")
_AWS_KEY_PREFIXES = ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa")

# A bare value runs to whitespace, a quote, a closing bracket or a delimiter (, ; &) that starts the next
# item: "password=hun&Tail" is one value, "password=a&user=b" and "password=a, user=b" are two items.
_BARE_VALUE = r"""(?:[^\s,;&'"}\])]|[,;&](?![\w.-]+=|\s|$))+"""
_QUOTED_VALUE = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
# A command-line value: quoted, or a word that is neither the next option nor a marker already there
_ARG_VALUE = r"""(?:"[^"]*"|'[^']*'|(?!-|<[A-Z_]+>)\S+)"""


def _cli_flag(tools: str, flag: str) -> re.Pattern[str]:
    """The value of ``flag`` on a command line of one of ``tools`` (options may sit in between, the
    command ends at a pipe, ``;`` or ``&``): ``mysql -uroot -pPW``, ``sshpass -p PW ssh ...``."""
    return re.compile(rf"(\b(?i:{tools})\b(?:\s+[^\s|;&]+)*?\s{flag})({_ARG_VALUE})")


# Words that describe a secret rather than being one: "password is incorrect", "with token bucket".
_PROSE_NOT_A_VALUE = frozenset((
    "a an the to for of on in at by from and or is was are were be been being has have had not no none null nil "
    "empty blank set unset change changed changes changing reset update updated expire expired expires expiring "
    "expiry expiration invalid incorrect wrong correct correctly valid required requirement requirements missing "
    "mismatch accepted rejected denied refused failed failure fails verified verification validation validated "
    "authentication authorization auth login logins policy policies protected protection weak strong too length "
    "complexity rotation rotated renewed revoked refresh refreshed provided supplied absent present stored saved "
    "hidden masked redacted unchanged disabled enabled locked unlocked bucket buckets limit limits count file "
    "prompt stdin ok successfully success same different ready generated sent received needed please here there "
    "this that it which when if as with via using must should will can cannot could would may might only also "
    "still now again hash hashed encrypted plaintext based less field attempt attempts type manager store vault "
    "rules history age reuse hint error errors request requested issued used found match matches matched check "
    "checked recovery strength format ttl lifetime scope scopes flow"
).split())
# the secret word, then how prose hands over its value ("is", "was set to", ":", "=", or just a space)
_PROSE = re.compile(
    r"(?<![A-Za-z0-9_])(?=[PpSsTtAa])"  # starts with a letter class: Python's re then skips fast to candidates
    r"(?i:pass(?:word|wd|phrase|code)?|pwd|secret|token|api[ _-]?key|access[ _-]?key|secret[ _-]?key"
    r"|private[ _-]?key)(?![A-Za-z0-9_])"
    r"(?P<sep>(?i:\s*[:=]\s*|\s+(?:(?:is|was|has\s+been|have\s+been)\s+)?(?:(?:set|changed|reset|updated)\s+to\s+"
    r"|(?:is|was)\b(?:\s+now)?\s*+:?+\s*+)|\s+))"
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s"',;]*[^\s"',;.])""")  # a sentence's final full stop is not the value's
# what makes "<word> X" (no verb) a handover: "login with pass X", "authenticated using the token X"
_PROSE_LEAD = re.compile(r"(?i)\b(?:with|using|via|use|uses|enter|entered|tried|trying)\s+(?:(?:the|a|an|my|your|his"
                         r"|her|its|our|their|new|old|admin|root|user|default|temporary|temp|initial|master)\s+)*$")


def _mask_prose(m: re.Match[str]) -> str:
    """The prose rule's decision: a value that is a word about the secret ("is incorrect") or already a
    marker stays, and a bare "password X" needs a lead such as "with" / "using" before it."""
    value = m["value"]
    if value.strip("\"'").lower() in _PROSE_NOT_A_VALUE or _PLACEHOLDER.fullmatch(value.upper()):
        return m[0]
    if not m["sep"].strip() and not _PROSE_LEAD.search(m.string, max(0, m.start() - 80), m.start()):
        return m[0]
    return m[0][: m.start("value") - m.start()] + SECRET


_RULES: list[tuple[re.Pattern[str], Any, tuple[str, ...]]] = [
    # PEM blocks (private keys, certificates with keys)
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
     "<PRIVATE_KEY>", ("begin",)),
    # JSON Web Tokens: three base64url parts, the header always starts with eyJ ('{"')
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "<JWT>", ("eyj",)),
    # HTTP auth schemes: keep the scheme, hide the credential
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1\2" + SECRET, ("bearer",)),
    # Basic/Digest credentials are base64-ish; "basic authentication" (lower-case words) is left alone
    (re.compile(r"\b(Basic|basic|BASIC)(\s+)(?=[A-Za-z0-9+/]*[A-Z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"), r"\1\2" + SECRET,
     ("basic",)),
    # Credentials inside URLs of any scheme: scheme://[user]:password@host. The password may hold '/'
    # (postgres://u:pa/ss@h) and '@' (u:p@ss@h: every '@' but the last before the host); "host:8080/..."
    # is a port, not a password.
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@?#]*:)(?!\d{1,5}(?:[/?#\s]|$))"
                r"(?:[^\s@]|@(?=[^\s@/?#]*@))+@"), r"\1" + SECRET + "@", ("://",)),
    # Webhook and bot URLs whose path is the credential (Slack, Discord, Teams, Mattermost, Telegram ...)
    (re.compile(r"(?i)(\bhooks\.slack\.com/(?:services|workflows|triggers|actions)/|\bapi\.telegram\.org/bot"
                r"|\b[a-z][a-z0-9+.-]*://[^\s/\"'<>]+(?:/[^\s/\"'<>?#]+)*?/(?:hooks|webhooks?|webhookb2)/)"
                r"[^\s\"'<>?#]+"), r"\1" + SECRET, ("hook", "telegram.org/bot")),
    # Query parameters that carry a credential under a short name (signed URLs, API keys): ?sig=, &key=
    (re.compile(r"(?i)([?&](?:sig|key|hmac|jwt)=)[^\s&#\"'<>]+"), r"\1" + SECRET, ("sig=", "key=", "hmac=", "jwt=")),
    # Cloud and SaaS key formats with recognisable prefixes
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), "<AWS_KEY>", _AWS_KEY_PREFIXES),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "<API_KEY>", ("aiza",)),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "<API_KEY>", ("gh",)),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "<API_KEY>", ("github_pat",)),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "<API_KEY>", ("xox",)),
    (re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}\b"), "<API_KEY>", ("_live_", "_test_")),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "<API_KEY>", ("sk-",)),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), "<API_KEY>", ("glpat",)),
    # JSON / quoted forms: "password": "x"  'token': 'y'
    (re.compile(rf"""(["'])([\w.-]++)\1(\s*:\s*)({_QUOTED_VALUE}|[^\s,}}\]]+)"""),
     lambda m: f'{m[1]}{m[2]}{m[1]}{m[3]}"{SECRET}"' if _is_secret_pair(m[2], m[4]) else m[0], ("\"", "'")),
    # key=value / key: value forms, quoted or bare values (password=hunter2, secret: abc, token="x y")
    (re.compile(rf"""(?<![\w.-])([\w.-]++)(\s*[=:]\s*)({_QUOTED_VALUE}|{_BARE_VALUE})"""),
     lambda m: f"{m[1]}{m[2]}{SECRET}" if _is_secret_pair(m[1], m[3]) else m[0], _KEY_WORDS),
    # options whose name ends in a secret word, value after a space: --password PW, --token X, -pass X
    (re.compile(rf"(-(?<!\S-)-?(?:[A-Za-z0-9]+[-_])*(?i:passw(?:or)?d|passwd|pass|pwd|secret|token|api-?key"
                rf"|access-?key|secret-?key|credentials?|auth)\s+){_ARG_VALUE}"), r"\1" + SECRET, _KEY_WORDS),
    # user:password options (curl -u admin:PW, --user, --proxy-user, -U); "-u 1000:1000" is uid:gid
    (re.compile(rf"((?<!\S)(?:-u|-U|--user|--proxy-user)(?:\s+|=)?[^\s:'\"]+:)(?!\d+(?:\s|$)){_ARG_VALUE}"),
     r"\1" + SECRET, ("-u",)),
    # password options of common clients, where the letter alone means "password" for that tool
    (_cli_flag(r"mysql\w*|mariadb\w*", r"-p\s*"), r"\1" + SECRET, ("mysql", "mariadb")),
    (_cli_flag(r"sshpass", r"-p\s*"), r"\1" + SECRET, ("sshpass",)),
    (_cli_flag(r"redis-cli", r"-a\s*"), r"\1" + SECRET, ("redis-cli",)),
    (_cli_flag(r"ldap\w+", r"-w\s*"), r"\1" + SECRET, ("ldap",)),
    (_cli_flag(r"zip|unzip|rar|unrar|7za?", r"-[pP]\s*"), r"\1" + SECRET, ("zip", "rar", "7z")),
    (_cli_flag(r"smbclient|rpcclient", r"(?:-U\s*|--user(?:name)?=)[^\s%]+%"), r"\1" + SECRET,
     ("smbclient", "rpcclient")),
    # prose: "the admin password is X", "token was set to X", "api key: X", "login with pass X"
    (_PROSE, _mask_prose, ("pass", "pwd", "secret", "token", "key")),
    # AWS secret access keys have no prefix; only catch them beside their usual names (above) or
    # as a 40-char base64 run next to an access key id, which is how they leak in config dumps.
    # The <AWS_KEY> marker is written by the key-id rule in this same pass, so the original text
    # shows the key id's prefix, not the marker.
    (re.compile(r"(<AWS_KEY>[\s,;:=\"']+)[A-Za-z0-9/+]{40}\b"), r"\1" + SECRET, (*_AWS_KEY_PREFIXES, "<aws_key>")),
    # e-mail addresses (personal data); not the user name of a URL (scheme://user@host)
    (re.compile(r"(?<![\w.%+/-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), "<EMAIL>",
     ("@",)),
]
assert len(_RULES) < 63, "needle_rules_sql packs one bit per rule into a BIGINT"
_NEEDLE_SETS = [frozenset(needles) for _, _, needles in _RULES]
_ALL_NEEDLES = tuple(sorted(frozenset().union(*_NEEDLE_SETS)))  # each checked once per text, not once per rule


def mask_text(text: str, rules: int | None = None) -> str:
    """Return ``text`` with credentials, keys, tokens and e-mail addresses replaced by markers.

    ``rules``: the bit set :func:`needle_rules_sql` computed for this very text in DuckDB (bit i:
    rule i's needles occur), which skips the needle checks; None checks here."""
    if not text:
        return text
    if rules is None:
        low = text.lower()
        present = {needle for needle in _ALL_NEEDLES if needle in low}  # usually empty: done
        if present:
            for (pattern, replacement, _), needles in zip(_RULES, _NEEDLE_SETS, strict=True):
                if not needles.isdisjoint(present):
                    text = pattern.sub(replacement, text)
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
    return (f"SELECT {column}, CASE WHEN _ascii THEN CAST({terms} AS BIGINT) END AS rules "  # noqa: S608
            f"FROM (SELECT {column}, lower({column}) AS _low, strlen({column}) = length({column}) AS _ascii "
            f"FROM {relation})")


@functools.lru_cache(maxsize=1 << 17)
def mask_urn(urn: str) -> str:
    """A resource URN safe to store: secrets masked as in :func:`mask_text`, then lower-cased like
    every URN (``urn:db:postgres:postgres://x:<secret>@h/db``). The same answer for its own output,
    so a URN can be normalised any number of times. Cached: a run meets the same few URNs again and
    again (every edge of a topology names two)."""
    return mask_text(urn).lower()


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
