"""The miner reproduces, digest for digest, what it produced when it ran on drain3's ``Drain``:
the same fingerprints for every line and the same saved state, byte for byte (``miner_golden.json``,
written by ``support.miner_golden`` before our own Drain core replaced drain3's)."""

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
