"""Fingerprints: a deterministic hash of the final template text and the configuration version."""

from __future__ import annotations

import hashlib

OTHER_TEMPLATE = "<other>"


def fingerprint(template: str, config_version: str) -> str:
    """16 hex chars of sha1(config version, template): stable across processes, hosts and releases
    that keep the same configuration version."""
    return hashlib.sha1(f"{config_version}\n{template}".encode()).hexdigest()[:16]


def other_fingerprint(config_version: str) -> str:
    """The visible overflow pattern that receives lines beyond a pattern cap."""
    return fingerprint(OTHER_TEMPLATE, config_version)
