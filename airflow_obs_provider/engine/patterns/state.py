"""Miner state to bytes and back.

Saved once per window (a snapshot on every change, as drain3's persistence handlers take, would
be far too slow for the hot path): Drain clusters (id, template), the prefix tree's leaves (so the
rebuilt tree routes exactly as before), per-family position statistics, templates and aliases.
The format is JSON compressed with zlib: no pickle, so a tampered row cannot run code.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow_obs_provider.engine.patterns.config import MinerConfig

if TYPE_CHECKING:
    from airflow_obs_provider.engine.patterns.miner import PatternMiner

FORMAT = 1


class StateError(ValueError):
    """Stored miner state cannot be read."""


def dump_state(miner: PatternMiner) -> bytes:
    drain = miner._drain
    doc = {
        "format": FORMAT,
        "config": asdict(miner.config),
        "version": miner.version,
        "counter": drain.counter,
        # cluster sizes are left out: we never use them, and without them re-mining a window the
        # miner has already seen leaves the state byte-identical (no pointless rewrite)
        "clusters": sorted([c.cluster_id, list(c.template)] for c in drain.clusters.values()),
        "leaves": sorted([path, ids] for path, ids in drain.tree.leaves()),
        "families": {
            str(cid): {
                "glue": [int(g) for g in s.glue],
                "values": s.values,
                "kinds": [sorted(k) for k in s.kinds],
                "issued": {fp: list(toks) for fp, toks in s.issued.items()},
                "ref": [list(s.ref[0]), list(s.ref[1])],
                "members": None if s.members is None else sorted(list(k) for k in s.members),
                "firm": sorted(s.firm),
            }
            for cid, s in miner._families.items()
        },
        "templates": miner._templates,
        "aliases": miner._aliases,
        "pending_aliases": miner._pending_aliases,
    }
    # canonical (sorted keys and lists): the same knowledge gives the same bytes whatever order the
    # lines arrived in, so a rerun that taught the miner nothing leaves the stored row untouched
    return zlib.compress(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), 6)


def load_state(cls: type[PatternMiner], blob: bytes, config: MinerConfig | Mapping[str, Any] | None) -> PatternMiner:
    from airflow_obs_provider.engine.patterns.miner import FamilyStats

    try:
        doc = json.loads(zlib.decompress(bytes(blob)))
    except (zlib.error, ValueError, TypeError) as exc:
        raise StateError(f"miner state is not readable ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"miner state has format {doc.get('format') if isinstance(doc, dict) else None!r}, "
                         f"expected {FORMAT}")
    stored = MinerConfig.from_overrides(doc["config"])
    wanted = stored if config is None else MinerConfig.from_overrides(config)
    miner = cls(wanted)
    if wanted.version != stored.version or doc.get("version") != stored.version:
        return miner  # another configuration: its templates are not ours to continue
    if wanted != stored:
        miner.config = wanted  # only caps differ; they do not shape templates
    # (a cluster entry may hold more after its template, e.g. a size written by an older release: unused)
    miner._drain.restore(((cid, tokens) for cid, tokens, *_ in doc["clusters"]), doc["counter"], doc["leaves"])
    for cid, fam in doc["families"].items():
        miner._families[int(cid)] = FamilyStats(
            glue=tuple(bool(g) for g in fam["glue"]),
            values=fam["values"],
            kinds=[set(k) for k in fam["kinds"]],
            issued={fp: tuple(toks) for fp, toks in fam["issued"].items()},
            ref=(tuple(fam["ref"][0]), tuple(fam["ref"][1])),
            members=None if fam.get("members") is None else [tuple(k) for k in fam["members"]],
            firm=set(fam.get("firm", [])),
        )
        stats = miner._families[int(cid)]
        stats._member_set = set(stats.members or ())
    miner._templates = dict(doc["templates"])
    miner._aliases = dict(doc["aliases"])
    miner._pending_aliases = dict(doc.get("pending_aliases", {}))
    return miner
