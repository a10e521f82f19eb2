"""The miner reproduces, digest for digest, what it produced when ``miner_golden.json`` was written:
the same fingerprints for every line and the same saved state, byte for byte. The file was first
written by ``support.miner_golden`` while the miner ran on drain3's ``Drain`` (our Drain core
reproduced it exactly), and refreshed once since, on purpose, with ALGORITHM_VERSION 5 (values in
unusual shapes, first-word values, one-word messages, paths with query strings: new templates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.miner_golden import golden_cases

GOLDEN: dict[str, Any] = json.loads((Path(__file__).parent / "miner_golden.json").read_text())


@pytest.fixture(scope="module")
def produced() -> dict[str, Any]:
    return golden_cases()


def test_the_golden_file_covers_every_case(produced: dict[str, Any]) -> None:
    assert sorted(produced) == sorted(GOLDEN)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_fingerprints_and_state_match_the_drain3_backed_miner(case: str, produced: dict[str, Any]) -> None:
    assert produced[case] == GOLDEN[case]
