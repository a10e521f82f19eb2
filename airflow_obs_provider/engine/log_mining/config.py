"""Miner configuration: one default for every log style, overridable per tenant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# Bump when masking/tokenising/grouping rules change in a way that changes templates: the
# version is part of every fingerprint, so old and new patterns never collide silently.
ALGORITHM_VERSION = "5"


@dataclass(frozen=True)
class MinerConfig:
    # Drain prefix-tree depth (4 = the first token is a tree key, so it always stays a constant)
    depth: int = 4
    # Drain similarity threshold: liberal on purpose, the cardinality rule below undoes wrong merges
    sim_th: float = 0.4
    max_children: int = 100
    # a position that differs inside a drain cluster becomes a variable once it has shown this many
    # distinct words; with fewer it is a constant and the cluster is split by it ("startup"/"shutdown")
    min_variable_values: int = 3
    # ...except when all those words look like states/actions (NEW, RUNNING, Started, GET): then it
    # takes this many before the position counts as a variable
    max_enum_values: int = 8
    # long lines are cut to this many tokens (the rest becomes one variable) to bound cost
    max_tokens: int = 160
    # per (tenant, resource) and window: patterns beyond this go to the visible "<other>" pattern
    max_patterns_per_resource: int = 500
    # per tenant: distinct templates kept by the miner before new ones go to "<other>"
    max_patterns_per_tenant: int = 20000

    def __post_init__(self) -> None:
        if self.depth < 3:
            raise ValueError(f"patterns config: depth must be >= 3, got {self.depth}")
        if not 0.0 < self.sim_th <= 1.0:
            raise ValueError(f"patterns config: sim_th must be in (0, 1], got {self.sim_th}")
        if not 2 <= self.min_variable_values <= self.max_enum_values:
            raise ValueError(f"patterns config: min_variable_values must be >= 2 and <= max_enum_values, got {self.min_variable_values}")
        for name in ("max_children", "max_tokens", "max_patterns_per_resource", "max_patterns_per_tenant"):
            if getattr(self, name) < 1:
                raise ValueError(f"patterns config: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def version(self) -> str:
        """Short stable id of everything that shapes templates (caps excluded: they do not)."""
        shaping = {k: v for k, v in asdict(self).items() if not k.startswith("max_patterns")}
        blob = json.dumps({"algo": ALGORITHM_VERSION, **shaping}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:8]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | MinerConfig | None) -> MinerConfig:
        """The default config with a tenant's overrides applied; unknown keys are an error."""
        if overrides is None:
            return cls()
        if isinstance(overrides, MinerConfig):
            return overrides
        defaults = cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"patterns config: unknown option(s) {unknown}; known: {sorted(known)}")
        # each option takes the type of its default (sim_th a float, the others whole numbers)
        cleaned: dict[str, Any] = {key: _option_value(key, value, type(getattr(defaults, key)))
                                   for key, value in overrides.items()}
        return replace(defaults, **cleaned)


def _option_value(key: str, value: Any, kind: type) -> int | float:
    """``value`` as a number of ``kind``; a boolean, text that is no number or a fraction where a
    whole number is wanted is an error naming the option (never silently truncated)."""
    try:
        if isinstance(value, bool):  # YAML "yes"/"true": a number by Python's rules, not by intent
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"patterns config: {key} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"patterns config: {key} must be a whole number, got {value!r}")
        return int(value) if isinstance(value, int) else int(number)
    return number
