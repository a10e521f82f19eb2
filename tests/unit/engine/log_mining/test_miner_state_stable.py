"""The miner's saved state records knowledge, not history: re-mining known lines changes nothing,
and the bytes do not depend on the order the lines arrived in (so a rerun rewrites no row)."""

from __future__ import annotations

import random

import pytest

from airflow_obs_provider.devkit.corpora import STYLES, generate_style
from airflow_obs_provider.patterns import PatternMiner

# one mixed batch, as a tenant's bucket mixes services; plus lines whose placeholders are spelled out
LINES = [labeled.line for style in sorted(STYLES) for labeled in generate_style(style, 300, seed=3)] + [
    f"GET {path} {code}" for path in ("/api/orders", "/api/users/7", "<*>", "/health") for code in ("200", "<*>")]


def test_mining_the_same_lines_again_leaves_the_state_byte_identical() -> None:
    miner = PatternMiner()
    first = miner.fingerprint_batch(LINES)
    saved = miner.to_bytes()
    assert miner.fingerprint_batch(LINES) == first
    assert miner.to_bytes() == saved
    reloaded = PatternMiner.from_bytes(saved)
    assert reloaded.fingerprint_batch(LINES) == first
    assert reloaded.to_bytes() == saved


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_state_does_not_depend_on_the_order_of_the_lines(seed: int) -> None:
    in_order = PatternMiner()
    in_order.fingerprint_batch(LINES)
    shuffled_lines = list(LINES)
    random.Random(seed).shuffle(shuffled_lines)
    shuffled = PatternMiner()
    shuffled.fingerprint_batch(shuffled_lines)
    assert shuffled.to_bytes() == in_order.to_bytes()
