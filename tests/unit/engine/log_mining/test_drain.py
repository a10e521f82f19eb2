"""Our Drain prefix tree: its routing rules, and the same tree as drain3 0.9.11's for any keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_obs_provider.engine.log_mining.drain import Cluster, PrefixTree, TokenDrain
from airflow_obs_provider.engine.log_mining.tokenizer import VAR


def _tree(keys: list[tuple[str, ...]], depth: int = 4, max_children: int = 100) -> PrefixTree:
    tree = PrefixTree(depth, max_children)
    for cid, key in enumerate(keys, start=1):
        tree.insert(Cluster(cid, key))
    return tree


def _paths(tree: PrefixTree) -> dict[tuple[str, ...], list[int]]:
    return {tuple(path): ids for path, ids in tree.leaves()}


def test_first_level_is_the_token_count_then_the_leading_words() -> None:
    tree = _tree([("disk", "full"), ("disk", "full", "now"), ("cpu", "hot", "now")])
    assert _paths(tree) == {("2", "disk"): [1], ("3", "disk"): [2], ("3", "cpu"): [3]}


def test_a_deeper_tree_keys_more_words_but_never_the_last_one() -> None:
    tree = _tree([("a",), ("a", "b"), ("a", "b", "c"), ("a", "b", "c", "d", "e")], depth=6)
    assert _paths(tree) == {("1",): [1], ("2", "a"): [2], ("3", "a", "b"): [3], ("5", "a", "b", "c"): [4]}
    assert _paths(_tree([("a", "b", "c")], depth=3)) == {("3",): [1]}


def test_a_word_holding_a_digit_shares_the_variable_child() -> None:
    tree = _tree([("eth0", "up"), ("node７", "up"), ("x²", "up"), ("eth", "up")])
    assert _paths(tree) == {("2", VAR): [1, 2, 3], ("2", "eth"): [4]}


def test_past_max_children_new_words_share_the_variable_child() -> None:
    # three places: two words of their own, the last place is kept for the variable child
    tree = _tree([("a", "x"), ("b", "x"), ("c", "x"), ("d", "x")], max_children=3)
    assert _paths(tree) == {("2", "a"): [1], ("2", "b"): [2], ("2", VAR): [3, 4]}
    # a variable child made early (a digit word) leaves every other place to words
    tree = _tree([("a1", "x"), ("b", "x"), ("c", "x"), ("d", "x")], max_children=3)
    assert _paths(tree) == {("2", VAR): [1, 4], ("2", "b"): [2], ("2", "c"): [3]}


def test_lookup_follows_the_word_then_the_variable_child_else_finds_nothing() -> None:
    tree = _tree([("a", "x"), ("b1", "x")])
    assert tree.leaf(("a", "y")).cluster_ids == [1]  # type: ignore[union-attr]
    assert tree.leaf(("zzz", "y")).cluster_ids == [2]  # type: ignore[union-attr]
    assert tree.leaf(("a", "y", "z")) is None
    assert _tree([("a", "x")]).leaf(("b", "x")) is None


def test_every_empty_key_is_one_cluster() -> None:
    drain = TokenDrain(depth=4, sim_th=0.4, max_children=100)
    assert drain.add_key(()) == drain.add_key(()) == 1
    assert _paths(drain.tree) == {("0",): [1]}


def test_a_restored_tree_routes_like_the_original() -> None:
    drain = TokenDrain(depth=5, sim_th=0.4, max_children=3)
    keys = [("GET", "/a", "ok"), ("PUT", "/b", "ok"), ("DEL", "/c", "no"), ("GET", "/a", "no"), ("x9", "y")]
    ids = [drain.add_key(k) for k in keys]
    restored = TokenDrain(depth=5, sim_th=0.4, max_children=3)
    restored.restore([(c.cluster_id, c.template) for c in drain.clusters.values()], drain.counter,
                     drain.tree.leaves())
    assert _paths(restored.tree) == _paths(drain.tree)
    assert [restored.add_key(k) for k in keys] == ids
    assert restored.add_key(("new", "line")) == drain.counter + 1


_WORDS = st.sampled_from(["a", "b", "c", "d", "e", "GET", "x1", "²", "7", VAR])


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.lists(_WORDS, max_size=6).map(tuple), max_size=40),
       probes=st.lists(st.lists(_WORDS, max_size=6).map(tuple), max_size=20),
       depth=st.integers(3, 7), max_children=st.integers(1, 5))
def test_the_tree_is_drain3s_tree(keys: list[tuple[str, ...]], probes: list[tuple[str, ...]], depth: int,
                                  max_children: int) -> None:
    """The same clusters inserted into drain3 0.9.11's ``Drain`` and into ours give the same leaves,
    and every key is routed to the same candidates (the state stores these paths)."""
    drain3 = pytest.importorskip("drain3.drain")

    class Candidates(drain3.Drain):  # type: ignore[misc, name-defined]
        def fast_match(self, cluster_ids: Any, tokens: Any, sim_th: Any, include_params: Any) -> Any:
            return list(cluster_ids)

    theirs = Candidates(depth=depth, max_children=max_children, param_str=VAR)
    ours = PrefixTree(depth, max_children)
    for cid, key in enumerate(keys, start=1):
        theirs.id_to_cluster[cid] = drain3.LogCluster(list(key), cid)
        theirs.add_seq_to_prefix_tree(theirs.root_node, theirs.id_to_cluster[cid])
        ours.insert(Cluster(cid, key))

    def their_leaves(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], list[int]]) -> None:
        if node.cluster_ids:
            out[path] = list(node.cluster_ids)
        for word, child in node.key_to_child_node.items():
            their_leaves(child, (*path, word), out)

    expected: dict[tuple[str, ...], list[int]] = {}
    their_leaves(theirs.root_node, (), expected)
    assert _paths(ours) == expected
    for probe in keys + probes:
        found = theirs.tree_search(theirs.root_node, list(probe), 0.4, False)
        if not probe and found is not None:  # drain3 hands back the one empty-line cluster itself
            found = [found.cluster_id]
        leaf = ours.leaf(probe)
        candidates = None if leaf is None else leaf.cluster_ids if probe else leaf.cluster_ids[:1]
        assert candidates == found


def test_a_template_of_variables_only_takes_no_key_that_has_a_word() -> None:
    """One-word messages are each their own message, even once a value alone on a line made a
    cluster whose template is a single variable."""
    drain = TokenDrain(depth=4, sim_th=0.4, max_children=100)
    value_only = drain.add_key((VAR,))
    words = [drain.add_key((word,)) for word in ("reloadConfig", "flushQueue", "reloadConfig")]
    assert words[0] == words[2] != words[1]
    assert value_only not in words
    assert drain.add_key((VAR,)) == value_only


def test_keys_that_differ_only_in_their_first_word_meet_beside_a_long_common_rest() -> None:
    """The tree keys on the first word; a value written as a plain word at the front ("billing:",
    "orders:") must still reach the family of the same message."""
    drain = TokenDrain(depth=4, sim_th=0.4, max_children=100)
    rest = (":", "job", "deferred", "until", "the", "next", VAR, "window")
    first = drain.add_key(("billing", *rest))
    assert drain.add_key(("orders", *rest)) == first
    assert drain.add_key(("reports.daily", *rest)) == first
    # a short rest does not merge ("gmetad startup succeeded" / "portmap startup succeeded")
    short = drain.add_key(("gmetad", "startup", "succeeded"))
    assert drain.add_key(("portmap", "startup", "succeeded")) != short
    # nor does a different rest, or punctuation standing first
    assert drain.add_key(("payments", ":", "job", "started", "after", "the", "last", VAR, "window")) != first
    assert drain.add_key(("[", *rest[1:], "x")) != first
