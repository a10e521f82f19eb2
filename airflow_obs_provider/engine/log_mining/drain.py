"""Our Drain: a prefix tree that proposes families of similar token keys (no drain3 at run time).

Drain (He et al., ICWS 2017) looks a line up by its number of tokens and then by its first few
tokens, one tree level each; the clusters listed at the node it reaches are its candidates, and
the most similar of them takes the line when the similarity reaches ``sim_th`` (else the line
starts a cluster of its own). A cluster's template is its first key with every position where a
later member differed turned into ``VAR``.

The tree has the shape drain3 0.9.11's ``Drain`` gives it (the miner's stored state records its
paths, and states written while the miner ran on drain3 must route the same way today):

- the first level is keyed by the token count written as text ("3"); below it ``depth - 3``
  levels are keyed by the leading tokens, and a line shorter than that stops at its last-but-one
  token: its last token never picks a node;
- a token holding a digit (``str.isdigit`` of any character) gets no node of its own: it shares
  the ``VAR`` child, as numbers are values, not words that name a message;
- a node keeps one place for the ``VAR`` child: it takes ``max_children - 1`` words of its own,
  the ``VAR`` child takes the last place, and later words go to the ``VAR`` child;
- a lookup follows a token's own child, else the ``VAR`` child, else finds nothing;
- all empty lines are one cluster (its template has no position to compare, so it matches any).

Clusters are never dropped (drain3 can evict them under a cap we never set), so a leaf's list
holds only live ids and needs none of drain3's clean-up on insertion.

The similarity test is ours (:class:`_Matcher`), and so is the fallback to a template that
describes a key exactly when the tree's route misses it (:meth:`TokenDrain._fitting_template`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import eq, itemgetter

from airflow_obs_provider.engine.log_mining.tokenizer import VAR

_WORD_START = re.compile(r"\w").match  # a word, not punctuation ("[", "(", "-")


class Cluster:
    """A family of keys: its id and its template (the keys' common words, ``VAR`` elsewhere)."""

    __slots__ = ("cluster_id", "matcher", "template")

    def __init__(self, cluster_id: int, template: Iterable[str]) -> None:
        self.cluster_id = cluster_id
        self.template = tuple(template)
        # built on first use (a restored state holds many clusters that a window never meets)
        self.matcher: _Matcher | None = None

    def matcher_now(self) -> _Matcher:
        """The matcher of the current template, built if needed."""
        if self.matcher is None:
            self.matcher = _Matcher(self.template)
        return self.matcher

    def generalise(self, tokens: Sequence[str]) -> None:
        """Every position where ``tokens`` differs from the template becomes a parameter."""
        self.template = tuple([a if a == b else VAR for a, b in zip(self.template, tokens, strict=True)])
        self.matcher = None


class Node:
    """A tree node: children by token, and the ids of the clusters whose route ends here."""

    __slots__ = ("children", "cluster_ids")

    def __init__(self) -> None:
        self.children: dict[str, Node] = {}
        self.cluster_ids: list[int] = []


class PrefixTree:
    """Routes a key to the node whose clusters are its candidates (rules in the module docstring)."""

    def __init__(self, depth: int, max_children: int) -> None:
        if depth < 3:
            raise ValueError(f"Drain depth must be >= 3, got {depth}")
        self.root = Node()
        self.prefix_tokens = depth - 3  # levels keyed by leading tokens, below the token-count level
        self.max_children = max_children
        self._by_count: dict[int, Node] = {}  # the root's children by token count as a number

    def leaf(self, tokens: Sequence[str]) -> Node | None:
        """The node ``tokens`` lead to, or None when the tree has no route for them."""
        n_tokens = len(tokens)
        node = self._by_count.get(n_tokens)
        if node is None or n_tokens < 2:  # (runs once per distinct line: the common cases first)
            return node
        for token in tokens[:self.prefix_tokens if n_tokens > self.prefix_tokens else n_tokens - 1]:
            children = node.children
            node = children.get(token) or children.get(VAR)
            if node is None:
                return None
        return node

    def insert(self, cluster: Cluster) -> None:
        """Add ``cluster`` at the end of its template's route, making the nodes it lacks."""
        template = cluster.template
        node = self.node_at([str(len(template))])
        if not template:  # (a lookup of an empty key finds this cluster: there is never a second)
            node.cluster_ids = [cluster.cluster_id]
            return
        for token in template[:min(self.prefix_tokens, len(template) - 1)]:
            node = self._child_for(node, token)
        node.cluster_ids.append(cluster.cluster_id)

    def _child_for(self, node: Node, token: str) -> Node:
        children = node.children
        child = children.get(token)
        if child is not None:
            return child
        if any(map(str.isdigit, token)):
            child = children.get(VAR)
            if child is None:
                child = children[VAR] = Node()
            return child
        has_var = VAR in children
        if len(children) + (not has_var) < self.max_children:  # room left beside the VAR child's place
            child = children[token] = Node()
        elif not has_var:
            child = children[VAR] = Node()
        else:
            child = children[VAR]
        return child

    def leaves(self) -> Iterator[tuple[list[str], list[int]]]:
        """(path of keys from the root, cluster ids) of every node that lists clusters."""
        stack: list[tuple[list[str], Node]] = [([], self.root)]
        while stack:
            path, node = stack.pop()
            if node.cluster_ids:
                yield path, list(node.cluster_ids)
            stack.extend((path + [key], child) for key, child in node.children.items())

    def node_at(self, path: Iterable[str]) -> Node:
        """The node at ``path``, made with the nodes leading to it when missing (restoring a state)."""
        node = self.root
        for key in path:
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = Node()
                if node is self.root and key.isascii() and key.isdigit() and str(int(key)) == key:
                    self._by_count[int(key)] = child
            node = child
        return node


def picker(positions: Sequence[int]) -> Callable[[Sequence[str]], tuple[str, ...]]:
    """The tokens at ``positions`` as a tuple, fetched at C speed (``itemgetter`` of a single
    position would return the token itself, of none would fail)."""
    if len(positions) >= 2:
        return itemgetter(*positions)
    if positions:
        pos = positions[0]
        return lambda tokens: (tokens[pos],)
    return lambda tokens: ()


class _Matcher:
    """A cluster template's constant words, fetched from a line with one ``itemgetter`` call and
    compared at C speed (this runs for every candidate cluster of every distinct line)."""

    __slots__ = ("consts", "fetch", "n", "params", "tail_consts", "tail_fetch")

    def __init__(self, template: tuple[str, ...]) -> None:
        self.n = len(template)
        positions = [pos for pos, tok in enumerate(template) if tok != VAR]
        self.params = self.n - len(positions)
        self.fetch = picker(positions) if positions else None
        self.consts = tuple(template[pos] for pos in positions)
        tail = positions[len(positions) // 2:] if len(positions) >= 4 else []
        self.tail_fetch = picker(tail) if tail else None
        self.tail_consts = tuple(template[pos] for pos in tail)

    def constants_of(self, tokens: Sequence[str]) -> tuple[str, ...]:
        return self.fetch(tokens) if self.fetch is not None else ()

    def similarity(self, tokens: Sequence[str], sim_th: float) -> float:
        """Drain's measure (equal constant words over all positions: template parameters count
        neither as alike nor as different); and the second half of the template's constant words
        must be as similar too: a header shared at the front (level, component, thread) must not
        carry two different messages into one cluster, where every word of theirs would then look
        like a variable."""
        if not self.n:
            return 1.0
        if self.fetch is None:
            return 0.0
        sim = sum(map(eq, self.fetch(tokens), self.consts)) / self.n
        if sim >= sim_th and self.tail_fetch is not None:
            if sum(map(eq, self.tail_fetch(tokens), self.tail_consts)) < sim_th * len(self.tail_consts):
                return 0.0
        return sim


class TokenDrain:
    """Drain over token tuples from our tokenizer: :meth:`add_key` runs once per distinct key."""

    # words (not punctuation) a template keeps besides its first word for a key that differs only
    # there to join it
    FIRST_WORD_MIN_REST = 4

    def __init__(self, depth: int, sim_th: float, max_children: int) -> None:
        self.sim_th = sim_th
        self.tree = PrefixTree(depth, max_children)
        self.clusters: dict[int, Cluster] = {}
        self.counter = 0  # the last cluster id given out
        # cluster ids by template length, built on first need (a restored state fills ``clusters``)
        self._by_length: dict[int, list[int]] | None = None

    def _most_similar(self, cluster_ids: Sequence[int], tokens: Sequence[str]) -> Cluster | None:
        """The candidate most similar to ``tokens`` (on a tie, the one with more parameters, then
        the first listed), if similar enough."""
        best, best_sim, best_params = None, -1.0, -1
        for cid in cluster_ids:
            cluster = self.clusters.get(cid)
            if cluster is None:
                continue
            matcher = cluster.matcher or cluster.matcher_now()
            sim = matcher.similarity(tokens, self.sim_th)
            if sim > best_sim or (sim == best_sim and matcher.params > best_params):
                best, best_sim, best_params = cluster, sim, matcher.params
        return best if best_sim >= self.sim_th else None

    def _fitting_template(self, tokens: tuple[str, ...]) -> Cluster | None:
        """A cluster whose template already describes ``tokens`` word for word (every constant equal),
        found outside the prefix tree's route; the most specific one, then the oldest.

        The tree routes by the first words, and its nodes grow as lines arrive: a line mined again
        (a rerun of a window, a clear, a backfill) can take another route than the first time and
        miss the cluster that absorbed it, which would then be duplicated on every rerun. Only a
        template the line fits exactly is taken, so lines that were never alike are not merged."""
        if self._by_length is None:
            self._by_length = {}
            for cid in sorted(self.clusters):
                self._by_length.setdefault(len(self.clusters[cid].template), []).append(cid)
        best: Cluster | None = None
        best_params = len(tokens) + 1
        # a template of variables only describes no message: it takes only keys without a word of
        # their own (else every one-word message, "closeQs" and "cancelAutohide", would be one)
        has_word = any(tok != VAR for tok in tokens)
        for cid in self._by_length.get(len(tokens), ()):
            cluster = self.clusters.get(cid)
            if cluster is None:
                continue
            matcher = cluster.matcher_now()
            if (matcher.params < best_params and matcher.constants_of(tokens) == matcher.consts
                    and (matcher.consts or not has_word)):
                best, best_params = cluster, matcher.params
        return best

    def _family_but_first_word(self, tokens: tuple[str, ...]) -> Cluster | None:
        """A cluster whose template equals ``tokens`` in every constant but the first word, when
        that template keeps at least ``FIRST_WORD_MIN_REST`` other words; the most specific,
        then the oldest.

        The tree keys its first level on the first word, so messages that begin with a value
        written as a plain word ("com.example.sync: job told to run later", "billing: job told to
        run later") never meet there. Only the first word may differ, and only beside a long
        common rest: the cardinality rule of the family then decides whether that word is a
        variable (several distinct words) or stays a constant (each its own template)."""
        first = tokens[0] if tokens else VAR
        if first == VAR or not _WORD_START(first):
            return None
        if self._by_length is None:
            self._fitting_template(tokens)  # builds the index
        best: Cluster | None = None
        best_params = len(tokens) + 1
        for cid in (self._by_length or {}).get(len(tokens), ()):
            cluster = self.clusters.get(cid)
            if cluster is None:
                continue
            head = cluster.template[0]
            if head == VAR or head == first or not _WORD_START(head):
                continue
            matcher = cluster.matcher_now()
            if (matcher.params < best_params and matcher.constants_of(tokens)[1:] == matcher.consts[1:]
                    and sum(1 for tok in matcher.consts[1:] if _WORD_START(tok)) >= self.FIRST_WORD_MIN_REST):
                best, best_params = cluster, matcher.params
        return best

    def match(self, tokens: tuple[str, ...]) -> int | None:
        """The cluster ``tokens`` belongs to, generalised to describe them, or None (nothing is
        created: the caller may try another form of the key, then :meth:`create`)."""
        leaf = self.tree.leaf(tokens)
        cluster = self._most_similar(leaf.cluster_ids, tokens) if leaf is not None else None
        if cluster is None:
            cluster = self._fitting_template(tokens) or self._family_but_first_word(tokens)
        if cluster is None:
            return None
        matcher = cluster.matcher_now()
        if matcher.constants_of(tokens) != matcher.consts:  # a constant differs: it becomes a parameter
            cluster.generalise(tokens)
        return cluster.cluster_id

    def create(self, tokens: tuple[str, ...]) -> int:
        """A new cluster for ``tokens``; its id."""
        self.counter += 1
        cluster = self.clusters[self.counter] = Cluster(self.counter, tokens)
        self.tree.insert(cluster)
        if self._by_length is not None:
            self._by_length.setdefault(len(tokens), []).append(cluster.cluster_id)
        return cluster.cluster_id

    def add_key(self, tokens: tuple[str, ...]) -> int:
        """Route ``tokens`` to its cluster (a new one when none is similar enough); the cluster id."""
        cid = self.match(tokens)
        return self.create(tokens) if cid is None else cid

    def restore(self, clusters: Iterable[tuple[int, Sequence[str]]], counter: int,
                leaves: Iterable[tuple[Sequence[str], Sequence[int]]]) -> None:
        """Load a saved tree: clusters (id, template), the last id given out, and the tree's leaves."""
        for cid, template in clusters:
            self.clusters[cid] = Cluster(cid, template)
        self.counter = counter
        for path, cluster_ids in leaves:
            self.tree.node_at(path).cluster_ids = list(cluster_ids)
        self._by_length = None
