"""Digests of what the pattern miner produces for fixed inputs: its fingerprints and its saved state.

``tests/unit/engine/log_mining/miner_golden.json`` was written by this module while the miner still
ran on drain3's ``Drain``; the test beside it checked that our own Drain core reproduced every
digest, so the switch changed no fingerprint, template or stored state byte. It was refreshed for
ALGORITHM_VERSION 5, whose grouping rules change templates on purpose.

Refresh (only when a change is *meant* to alter templates, and then bump ALGORITHM_VERSION):
``python tests/support/miner_golden.py > tests/unit/engine/log_mining/miner_golden.json``
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from collections.abc import Sequence
from typing import Any

from airflow_obs_provider.devkit.bench.log_miner import stream_with_distinct_fraction
from airflow_obs_provider.devkit.corpora import STYLES, generate_style
from airflow_obs_provider.patterns import PatternMiner

# lines that take the prefix tree's rarer turns: empty and blank lines, one-token lines, the
# parameter string written out, first words holding digits (ASCII, fullwidth, superscript), and
# more distinct first words than a tree node may have children (max_children is 100)
ODD_LINES = ["", "   ", "ready", "<*>", "<*> <*> literal", "GET <*> 200", "x² value 7", "①② done",
             "node７ up", "ssh2 session opened", "eth0 up eth1 down", "a1b2 token", "7 dwarfs"]
ODD_LINES += [f"{word} started task {n}" for n, word in enumerate(
    f"{a}{b}" for a in "bcdfghjklmnp" for b in "aeiou")]  # 60 first words...
ODD_LINES += [f"{word} stopped task" for word in (f"q{a}{b}" for a in "aeiou" for b in "bcdfghjklmnpqrstvwxyz")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fps_digest(fps: Sequence[str]) -> str:
    return _sha("\n".join(fps).encode())


def _mine(batches: Sequence[Sequence[str]], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mine ``batches`` one after another, the state saved and reloaded between them (as the
    oo-agg job's window mining does per window): the digest of every batch's fingerprints and state. The
    state is hashed uncompressed: the JSON document is ours, zlib's exact output is the library's."""
    miner = PatternMiner(config)
    out: dict[str, Any] = {"batches": []}
    for lines in batches:
        fps = miner.fingerprint_batch(list(lines))
        state = miner.to_bytes()
        out["batches"].append({"lines": len(lines), "patterns": len(set(fps)),
                               "fingerprints_sha256": _fps_digest(fps), "state_sha256": _sha(zlib.decompress(state))})
        miner = PatternMiner.from_bytes(state, config)
    return out


def golden_cases() -> dict[str, Any]:
    mixed = [row.line for style in sorted(STYLES) for row in generate_style(style, 300, seed=5)] + ODD_LINES
    cases: dict[str, Any] = {}
    for style in sorted(STYLES):
        lines = [row.line for row in generate_style(style, 600, seed=13)]
        cases[f"style:{style}"] = _mine([lines[:300], lines[300:]])
    cases["mixed"] = _mine([mixed[::2], mixed[1::2], mixed])
    cases["mixed depth=3"] = _mine([mixed], {"depth": 3})
    cases["mixed depth=6 max_children=3"] = _mine([mixed[::2], mixed[1::2]], {"depth": 6, "max_children": 3})
    cases["all distinct stream"] = _mine([stream_with_distinct_fraction(6000, 1.0)])
    return cases


if __name__ == "__main__":
    json.dump(golden_cases(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
