"""Miner state to bytes and back.

Saved once per window (a snapshot on every change, as drain3's persistence handlers take, would
be far too slow for the hot path): Drain clusters (id, template), the prefix tree's leaves (so the
rebuilt tree routes exactly as before), per-family position statistics, templates and aliases.
The format is JSON compressed with zlib: no pickle, so a tampered row cannot run code.

The miner says what it knows (:meth:`PatternMiner.snapshot`, a plain document) and rebuilds itself
from it (:meth:`PatternMiner.restore`); this module only turns such a document into bytes and back,
so it never looks inside the miner.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

FORMAT = 1


class StateError(ValueError):
    """Stored miner state cannot be read."""


def encode_state(doc: dict[str, Any]) -> bytes:
    """A miner's snapshot as stored bytes."""
    # canonical (sorted keys and lists): the same knowledge gives the same bytes whatever order the
    # lines arrived in, so a rerun that taught the miner nothing leaves the stored row untouched
    return zlib.compress(json.dumps({"format": FORMAT, **doc}, separators=(",", ":"), sort_keys=True).encode(), 6)


def decode_state(blob: bytes) -> dict[str, Any]:
    """The snapshot stored in ``blob``; :class:`StateError` when it is unreadable or of another format."""
    try:
        doc = json.loads(zlib.decompress(bytes(blob)))
    except (zlib.error, ValueError, TypeError) as exc:
        raise StateError(f"miner state is not readable ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"miner state has format {doc.get('format') if isinstance(doc, dict) else None!r}, "
                         f"expected {FORMAT}")
    return doc
