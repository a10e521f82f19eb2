"""Nodes and edges of one observed topology, keyed by URN (design §4)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_obs_provider.engine.job_names import TOPOLOGY_JOB_BY_SOURCE
from airflow_obs_provider.engine.masking import mask_labels, mask_text, mask_urn

SOURCES = tuple(TOPOLOGY_JOB_BY_SOURCE)  # terraform, ansible


class TopologySourceError(ValueError):
    """A topology source (state file, inventory, playbook) cannot be read; the message names it."""


@dataclass(frozen=True)
class Node:
    urn: str
    type: str
    labels: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, order=True)
class Edge:
    """A directed, typed edge. Identity is (src, dst, edge_type); ``props`` say where it came from."""

    src: str
    dst: str
    edge_type: str
    props: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.dst, self.edge_type)

    def props_dict(self) -> dict[str, str]:
        return dict(self.props)

    def props_json(self) -> str:
        """Canonical JSON of ``props`` (keys are already sorted)."""
        return json.dumps(dict(self.props)) if self.props else "{}"


@dataclass
class Topology:
    """One observation of one source: every node an edge touches is present in ``nodes``."""

    source: str
    nodes: dict[str, Node] = field(default_factory=dict)
    _edges: dict[tuple[str, str, str], Edge] = field(default_factory=dict)

    def add_node(self, urn: str, type_: str, labels: Mapping[str, Any] | None = None) -> str:
        """Add (or enrich) a node; labels are masked here so no reader can forget it."""
        urn = normalise_urn(urn)
        safe = mask_labels(labels or {})
        known = self.nodes.get(urn)
        if known is None:
            self.nodes[urn] = Node(urn, type_, safe)
        else:
            self.nodes[urn] = Node(urn, known.type or type_, {**safe, **known.labels})
        return urn

    def add_edge(self, src: str, dst: str, edge_type: str, **props: str) -> None:
        """Add an edge between two known nodes; self-loops carry no information and are dropped.

        When the same edge is derived twice, the smallest props win so the result does
        not depend on the order in which readers meet their inputs.
        """
        src, dst = normalise_urn(src), normalise_urn(dst)
        for urn in (src, dst):
            if urn not in self.nodes:
                raise KeyError(f"edge endpoint {urn} is not a node of this topology")
        if src == dst:
            return
        edge = Edge(src, dst, edge_type, tuple(sorted((k, mask_text(v)) for k, v in props.items())))
        known = self._edges.get(edge.key)
        if known is None or edge.props < known.props:
            self._edges[edge.key] = edge

    @property
    def edges(self) -> list[Edge]:
        return sorted(self._edges.values())

    def iter_edges(self) -> Iterator[Edge]:
        """The edges in no particular order (cheap: for bulk writes of large topologies)."""
        return iter(self._edges.values())

    @property
    def edge_count(self) -> int:
        return len(self._edges)


def normalise_urn(urn: str) -> str:
    """URNs are lower-case and stable (design §4), and hold no secret: every reader's URNs pass here
    before they reach ``dim_resource``, ``topo_edge_time`` or the graph (an Ansible ``obs_depends_on``
    URL with a password, a Terraform for_each key ...)."""
    return mask_urn(urn.strip())
