"""Template miner: named masks, deduplication, Drain clustering and a cardinality rule.

How a batch is mined:

1. Each line is reduced to its digit-normalised form (:func:`masks.digit_key`); equal forms are
   processed once, so the cost grows with distinct lines, not total lines.
2. Each distinct form is masked (secrets, URLs, IPs, paths, timestamps, sizes...) and tokenised.
   Tokens holding a digit or a mask are variables, except words that merely end in a number
   (ssh2, SOCKS5, eth0: names, shown as ``ssh<NUM>``); the rest are constants. A few plain words
   in double quotes are one token. Equal token keys are merged again.
3. The distinct keys, in sorted order (so a window gives the same result whatever the order of
   its lines), go through our Drain (:mod:`.drain`): it proposes families of similar keys.
4. Inside a drain cluster, a position where members disagree is a *variable* only once it has
   shown ``min_variable_values`` distinct words; before that it is a constant and the family is
   split by it. Drain alone merges "cupsd startup succeeded" with "cupsd shutdown succeeded" and
   "... SCREEN_ON" with "... SCREEN_OFF"; real variables (user names, hosts) show many values.
   The words are counted per *sub-family* (members that agree on every constant position), so
   two messages Drain put together cannot turn each other's words into one variable. A word
   where other members hold a masked value ("state 6" / "state unknown") is a variable at once.
   Drain's similarity must also hold for the second half of a template's constant words: a
   header shared at the front of raw lines (level, component) does not merge two messages.
5. The final template of a key uses the state after the whole batch; runs of space-separated
   variables collapse into one (variable-length values), and the fingerprint hashes that text
   with the configuration version. When a template generalises, every fingerprint issued
   before for the same family is aliased to its new fingerprint (``pop_aliases``).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import compress, count, repeat
from operator import ne, or_
from typing import Any, ClassVar

from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.log_mining.drain import TokenDrain, picker
from airflow_obs_provider.engine.log_mining.fingerprint import OTHER_TEMPLATE, fingerprint, other_fingerprint
from airflow_obs_provider.engine.log_mining.masks import DIGIT_RUN, apply_masks
from airflow_obs_provider.engine.log_mining.state import decode_state, encode_state
from airflow_obs_provider.engine.log_mining.tokenizer import (
    GLUED_VALUE,
    VAR,
    Tokens,
    render,
    shown_word,
    tokenize,
    value_words_as_one,
)

_LIST_SEPARATORS = frozenset({",", ";"})
_ENUM_LIKE = re.compile(r"[A-Z][A-Z0-9_]+|[A-Z][a-z]+")


def _drain_view(key: tuple[str, ...]) -> tuple[str, ...]:
    """The key as Drain sees it: leading variables moved to the end, so Drain's prefix tree branches
    on the first *constant* words ("<IP> Served block" and "<IP> Receiving block" part at once)
    instead of piling every line that starts with a timestamp, host or id into one leaf."""
    lead = 0
    for tok in key:
        if tok != VAR:
            break
        lead += 1
    return key[lead:] + key[:lead] if 0 < lead < len(key) else key


@dataclass
class FamilyStats:
    """What we know about the positions of one drain cluster."""

    glue: tuple[bool, ...]
    # per position: the distinct words seen (capped), or None once the position is a variable
    values: list[dict[str, int] | None]
    # per position: kinds of variables seen there (NUM, IP, ...), for readable templates
    kinds: list[set[str]]
    # fingerprints handed out for this family -> the token tuple they stood for
    issued: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the first key seen (tokens, kinds): later keys only need their differing positions observed
    ref: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    # the family's distinct keys while there are few (None past MAX_MEMBERS): the values of a
    # position are recounted per sub-family of members that agree on every constant position
    members: list[tuple[str, ...]] | None = field(default_factory=list)
    # positions that are variables whatever the sub-families say (a masked value was seen there,
    # or more words than any enumeration has)
    firm: set[int] = field(default_factory=set)
    _member_set: set[tuple[str, ...]] = field(default_factory=set, repr=False, compare=False)

    MAX_MEMBERS: ClassVar[int] = 128

    @classmethod
    def new(cls, tokens: Tokens) -> FamilyStats:
        n = len(tokens.key)
        return cls(glue=tokens.glue, values=[{} for _ in range(n)], kinds=[set() for _ in range(n)])

    def observe(self, tokens: Tokens, min_values: int, max_enum_values: int) -> None:
        key, kinds = tokens.key, tokens.kinds
        ref, ref_kinds = self.ref
        if not ref:
            self.ref = (key, kinds)
            changed: Sequence[int] = range(len(key))
        else:  # only positions that differ from the family's first key can add anything new
            # (at C speed: this runs for every distinct line)
            changed = list(compress(count(), map(or_, map(ne, key, ref), map(ne, kinds, ref_kinds))))
        if self.members is not None and key not in self._member_set:
            if len(self.members) >= self.MAX_MEMBERS:
                self.members, self._member_set = None, set()
            else:
                self.members.append(key)
                self._member_set.add(key)
        values = self.values
        for pos in changed:
            tok, kind = key[pos], kinds[pos]
            if kind:
                self.kinds[pos].add(kind)
            seen = values[pos]
            if seen is None or tok in seen:
                continue
            seen[tok] = 1
            n = len(seen)
            # a word where other members hold a masked value is that value written differently
            # ("state 6" / "state unknown", "class v2.JobEvent" / "class jobhistory.Event")
            if n >= max_enum_values or (n >= 2 and VAR in seen):
                values[pos] = None
                self.firm.add(pos)
            elif n >= min_values and not _all_enum_like(seen):
                values[pos] = None

    def snapshot(self) -> dict[str, Any]:
        """What a stored state keeps of this family (JSON-ready, lists sorted so equal knowledge
        gives equal bytes)."""
        return {
            "glue": [int(g) for g in self.glue],
            "values": self.values,
            "kinds": [sorted(k) for k in self.kinds],
            "issued": {fp: list(toks) for fp, toks in self.issued.items()},
            "ref": [list(self.ref[0]), list(self.ref[1])],
            "members": None if self.members is None else sorted(list(k) for k in self.members),
            "firm": sorted(self.firm),
        }

    @classmethod
    def restore(cls, doc: Mapping[str, Any]) -> FamilyStats:
        stats = cls(
            glue=tuple(bool(g) for g in doc["glue"]),
            values=doc["values"],
            kinds=[set(k) for k in doc["kinds"]],
            issued={fp: tuple(toks) for fp, toks in doc["issued"].items()},
            ref=(tuple(doc["ref"][0]), tuple(doc["ref"][1])),
            members=None if doc.get("members") is None else [tuple(k) for k in doc["members"]],
            firm=set(doc.get("firm", [])),
        )
        stats._member_set = set(stats.members or ())
        return stats

    def variable_positions(self, min_values: int) -> tuple[int, ...]:
        """Positions shown as variables. A position that took ``min_values`` words across the whole
        family stays a constant when no sub-family (members agreeing on every constant position)
        shows that many: two messages that Drain put together ("WWEN[enable]"/"WWEN[disable]"
        beside "syncPowerState: WWEN[enabled]") must not turn their words into one variable."""
        variables = {pos for pos, seen in enumerate(self.values) if seen is None}
        if self.members is None or not variables - self.firm:
            return tuple(sorted(variables))
        while True:
            constants = [pos for pos in range(len(self.values)) if pos not in variables]
            sub_family = picker(constants)
            demoted = set()
            for pos in sorted(variables - self.firm):
                words: dict[tuple[str, ...], set[str]] = {}
                for key in self.members:
                    words.setdefault(sub_family(key), set()).add(key[pos])
                if max(map(len, words.values())) < min_values:
                    demoted.add(pos)
            if not demoted:
                return tuple(sorted(variables))
            variables -= demoted


def final_tokens(key: tuple[str, ...], variable_positions: tuple[int, ...]) -> tuple[str, ...]:
    """The key with every position the family treats as a variable shown as one."""
    if not variable_positions:
        return key
    out = list(key)
    for pos in variable_positions:
        out[pos] = VAR
    return tuple(out)


def _all_enum_like(values: Mapping[str, int]) -> bool:
    """Upper-case or Capitalised words (NEW, RUNNING, Started, GET) name states and actions: a few
    of them at one position are different messages, not a variable (unlike user or host names)."""
    return all(_ENUM_LIKE.fullmatch(v) for v in values)


class PatternMiner:
    """Mine log templates and give every line a stable fingerprint.

    >>> miner = PatternMiner()
    >>> fps = miner.fingerprint_batch(["user 1 logged in", "user 22 logged in"])
    >>> fps[0] == fps[1], miner.template(fps[0])
    (True, 'user <NUM> logged in')
    """

    def __init__(self, config: MinerConfig | Mapping[str, Any] | None = None) -> None:
        self.config = MinerConfig.from_overrides(config)
        self.version = self.config.version
        c = self.config
        self._drain = TokenDrain(depth=c.depth, sim_th=c.sim_th, max_children=c.max_children)
        self._families: dict[int, FamilyStats] = {}
        self._templates: dict[str, str] = {}  # fingerprint -> readable template
        self._aliases: dict[str, str] = {}  # every alias ever made, old -> newest
        self._pending_aliases: dict[str, str] = {}  # made since the last pop_aliases()
        self.other = other_fingerprint(self.version)

    # -- public API ---------------------------------------------------------------------------

    def fingerprint_batch(self, lines: Sequence[str | None], *, digit_normalised: bool = False,
                          secret_rules: Sequence[int | None] | None = None) -> list[str]:
        """One fingerprint per line, in order, each from the template its line has after the
        whole batch was mined.

        ``digit_normalised``: every run of ASCII digits in ``lines`` is already one ``0`` (what
        window.py's DuckDB collapse hands over), so only lines with other characters are
        normalised again (``\\d`` also matches non-ASCII digits): same fingerprints, less work.
        ``secret_rules``: per line, :func:`masking.needle_rules_sql`'s bit set for the line as given
        (None: checked in Python); only with ``digit_normalised``, as masking reads the normalised line."""
        if not lines:
            return []
        if secret_rules is not None and (not digit_normalised or len(secret_rules) != len(lines)):
            raise ValueError("secret_rules needs digit_normalised lines and one entry per line")
        # A batch allocates a great many small tuples and strings and makes no reference cycles:
        # the cyclic collector would only rescan the growing heap again and again (about a tenth
        # of the time with every line distinct). Reference counting still frees everything.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._fingerprint_batch(lines, digit_normalised, secret_rules)
        finally:
            if collecting:
                gc.enable()

    def _fingerprint_batch(self, lines: Sequence[str | None], digit_normalised: bool,
                           secret_rules: Sequence[int | None] | None) -> list[str]:
        normalise = partial(DIGIT_RUN.sub, "0")  # digit_key() without a Python call per line
        if digit_normalised:  # an ASCII line normalised once is its own digit_key (isascii is O(1))
            forms = [(line if line.isascii() else normalise(line)) if line else "" for line in lines]
        else:
            forms = [normalise(line) if line else "" for line in lines]
        form_to_key: dict[str, int] = {}
        key_index: dict[tuple[str, ...], int] = {}
        # masking makes many forms one text (every "password=<SECRET>" line): tokenised once
        key_of_masked: dict[str, int] = {}
        distinct: list[Tokens] = []
        # (no needle holds a digit, so re-normalising a line above leaves its needles, and rules, as they were)
        rules: Iterable[int | None] = secret_rules if secret_rules is not None else repeat(None)
        rules_of: dict[str, int | None] = {}
        for form, form_rules in zip(forms, rules, strict=False):
            rules_of.setdefault(form, form_rules)
        # sorted: when forms share a key, the first one gives the key its kinds (how its variables
        # print), which must not depend on the order the records arrived in
        for form in sorted(rules_of):
            masked = apply_masks(form, rules_of[form])
            idx = key_of_masked.get(masked)
            if idx is None:
                tokens = tokenize(masked, self.config.max_tokens)
                idx = key_index.get(tokens.key)
                if idx is None:
                    idx = key_index[tokens.key] = len(distinct)
                    distinct.append(tokens)
                key_of_masked[masked] = idx
            form_to_key[form] = idx

        cluster_of = self._mine(distinct)
        fp_of_key = self._finalise(distinct, cluster_of)
        return list(map(fp_of_key.__getitem__, map(form_to_key.__getitem__, forms)))  # C speed, no extra dict

    def template(self, fp: str) -> str:
        """The readable template of a fingerprint (aliases are followed to the current one)."""
        fp = self._aliases.get(fp, fp)
        if fp == self.other:
            return OTHER_TEMPLATE
        try:
            return self._templates[fp]
        except KeyError:
            raise KeyError(f"unknown pattern fingerprint {fp!r}") from None

    def resolve(self, fp: str) -> str:
        """The current fingerprint for one that may have been generalised since."""
        return self._aliases.get(fp, fp)

    def templates(self) -> dict[str, str]:
        return dict(self._templates)

    def add_aliases(self, aliases: Mapping[str, str]) -> None:
        """Fingerprints issued elsewhere (another configuration's) that now stand for these: kept
        and handed out by :meth:`pop_aliases` like the miner's own."""
        for old, new in sorted(aliases.items()):
            if old != new:
                self._alias(old, self._aliases.get(new, new))

    def pop_aliases(self) -> dict[str, str]:
        """Aliases (old fingerprint -> current) created since the last call."""
        out, self._pending_aliases = self._pending_aliases, {}
        return out

    @property
    def pattern_count(self) -> int:
        return len(self._templates)

    def to_bytes(self) -> bytes:
        return encode_state(self.snapshot())

    @classmethod
    def from_bytes(cls, blob: bytes, config: MinerConfig | Mapping[str, Any] | None = None) -> PatternMiner:
        """Rebuild a miner; with ``config`` given and different from the stored one, start fresh
        (templates of another configuration are not comparable)."""
        return cls.restore(decode_state(blob), config)

    def snapshot(self) -> dict[str, Any]:
        """Everything the miner knows, as a JSON-ready document (:meth:`restore` reads it back):
        Drain clusters (id, template), the prefix tree's leaves (so the rebuilt tree routes exactly as
        before), per-family position statistics, templates and aliases."""
        drain = self._drain
        return {
            "config": asdict(self.config),
            "version": self.version,
            "counter": drain.counter,
            # cluster sizes are left out: we never use them, and without them re-mining a window the
            # miner has already seen leaves the state byte-identical (no pointless rewrite)
            "clusters": sorted([c.cluster_id, list(c.template)] for c in drain.clusters.values()),
            "leaves": sorted([path, ids] for path, ids in drain.tree.leaves()),
            "families": {str(cid): stats.snapshot() for cid, stats in self._families.items()},
            "templates": self._templates,
            "aliases": self._aliases,
            "pending_aliases": self._pending_aliases,
        }

    @classmethod
    def restore(cls, doc: Mapping[str, Any], config: MinerConfig | Mapping[str, Any] | None = None) -> PatternMiner:
        """A miner from a :meth:`snapshot`; with ``config`` of another version, a fresh miner."""
        stored = MinerConfig.from_overrides(doc["config"])
        wanted = stored if config is None else MinerConfig.from_overrides(config)
        miner = cls(wanted)
        if wanted.version != stored.version or doc.get("version") != stored.version:
            return miner  # another configuration: its templates are not ours to continue
        if wanted != stored:
            miner.config = wanted  # only caps differ; they do not shape templates
        # (a cluster entry may hold more after its template, e.g. a size written by an older release: unused)
        miner._drain.restore(((cid, tokens) for cid, tokens, *_ in doc["clusters"]), doc["counter"], doc["leaves"])
        miner._families = {int(cid): FamilyStats.restore(fam) for cid, fam in doc["families"].items()}
        miner._templates = dict(doc["templates"])
        miner._aliases = dict(doc["aliases"])
        miner._pending_aliases = dict(doc.get("pending_aliases", {}))
        return miner

    # -- internals ----------------------------------------------------------------------------

    def _mine(self, distinct: list[Tokens]) -> list[int]:
        cluster_of = [0] * len(distinct)
        min_values, max_enum = self.config.min_variable_values, self.config.max_enum_values
        # sorted, so a window gives the same result whatever the order of its lines; by the joined
        # text, which sorts faster than tuples (no token holds "\x1f": it is whitespace to \s)
        texts = ["\x1f".join(tokens.key) for tokens in distinct]
        match, create, families = self._drain.match, self._drain.create, self._families
        # A key that may hold a value in an unusual shape (a variable glued to punctuation:
        # "LOCAL(0)" where others hold an IP, "<host>:<port>" where others hold "<host>") comes
        # after the others ("<host>:<port> open" sorts before "<*> open"), and when it joins no
        # cluster, the form with each such word as one variable (:func:`value_words_as_one`) may.
        order = sorted(range(len(texts)), key=texts.__getitem__)
        glued = list(map(GLUED_VALUE.search, texts))
        for idx in [i for i in order if not glued[i]] + [i for i in order if glued[i]]:
            tokens = distinct[idx]
            cid = match(_drain_view(tokens.key))
            if cid is None:
                one_value = value_words_as_one(tokens) if glued[idx] else None
                if one_value is not None and (cid := match(_drain_view(one_value.key))) is not None:
                    tokens = distinct[idx] = one_value
                else:
                    cid = create(_drain_view(tokens.key))
            stats = families.get(cid)
            if stats is None:
                stats = families[cid] = FamilyStats.new(tokens)
            stats.observe(tokens, min_values, max_enum)
            cluster_of[idx] = cid
        return cluster_of

    def _render(self, stats: FamilyStats, final: tuple[str, ...]) -> tuple[str, str]:
        """(canonical text hashed into the fingerprint, readable text with variable kinds).

        A run of variables separated only by spaces or by ", " is one variable: lists of hosts,
        multi-word values and optional units vary in length, not in meaning."""
        canon: list[str] = []
        glue: list[bool] = []
        run_kinds: list[set[str]] = []  # kinds of each output variable, aligned with canon VARs
        kinds_at: list[int] = []  # index into run_kinds per output position (-1 = constant)
        for pos, tok in enumerate(final):
            if tok != VAR:
                canon.append(tok)
                glue.append(stats.glue[pos])
                kinds_at.append(-1)
                continue
            kinds = (stats.kinds[pos] if stats.values[pos] is not None else set()) or {"*"}
            if canon and canon[-1] == VAR and stats.glue[pos]:
                run_kinds[kinds_at[-1]] |= kinds
                continue
            if len(canon) >= 2 and canon[-1] in _LIST_SEPARATORS and canon[-2] == VAR and not glue[-1]:
                canon.pop(), glue.pop(), kinds_at.pop()
                run_kinds[kinds_at[-1]] |= kinds
                continue
            canon.append(VAR)
            glue.append(stats.glue[pos])
            kinds_at.append(len(run_kinds))
            run_kinds.append(set(kinds))
        shown = [shown_word(tok) if k < 0 else (f"<{next(iter(run_kinds[k]))}>" if len(run_kinds[k]) == 1 else VAR)
                 for tok, k in zip(canon, kinds_at, strict=True)]
        return render(tuple(canon), tuple(glue)), render(tuple(shown), tuple(glue))

    def _issue(self, stats: FamilyStats, final: tuple[str, ...]) -> str:
        canon, shown = self._render(stats, final)
        fp = fingerprint(canon, self.version)
        if fp not in self._templates:
            if len(self._templates) >= self.config.max_patterns_per_tenant:
                return self.other
        self._templates[fp] = shown
        stats.issued[fp] = final
        return fp

    def _alias(self, old: str, new: str) -> None:
        for prior, target in self._aliases.items():
            if target == old:
                self._aliases[prior] = new
                self._pending_aliases[prior] = new
        self._aliases[old] = new
        self._pending_aliases[old] = new
        self._aliases.pop(new, None)

    def _finalise(self, distinct: list[Tokens], cluster_of: list[int]) -> list[str]:
        min_values = self.config.min_variable_values
        variables = {cid: self._families[cid].variable_positions(min_values) for cid in sorted(set(cluster_of))}
        # earlier fingerprints of the touched families may have generalised: alias them
        for cid, positions in variables.items():
            stats = self._families[cid]
            for old_fp, old_final in list(stats.issued.items()):
                new_final = final_tokens(old_final, positions)
                if new_final != old_final:
                    del stats.issued[old_fp]
                    new_fp = self._issue(stats, new_final)
                    # another family may still stand behind the same text: then it is not retired
                    if new_fp != old_fp and not any(old_fp in f.issued for f in self._families.values()):
                        self._templates.pop(old_fp, None)
                        self._alias(old_fp, new_fp)
        out: list[str] = []
        issued: dict[tuple[int, tuple[str, ...]], str] = {}
        for tokens, cid in zip(distinct, cluster_of, strict=True):
            final = final_tokens(tokens.key, variables[cid])
            fp = issued.get((cid, final))
            if fp is None:
                fp = issued[(cid, final)] = self._issue(self._families[cid], final)
            out.append(fp)
        return out
