from __future__ import annotations

import pytest

from airflow_obs_provider.engine.topology.model import Topology


def test_urns_are_lower_cased_and_edges_need_known_nodes() -> None:
    topo = Topology("terraform")
    a = topo.add_node("urn:tf:Module.App.aws_instance.Web", "aws_instance")
    assert a == "urn:tf:module.app.aws_instance.web"
    with pytest.raises(KeyError, match="urn:tf:missing"):
        topo.add_edge(a, "urn:tf:missing", "DEPENDS_ON")


def test_edge_props_do_not_depend_on_derivation_order() -> None:
    def build(order: list[str]) -> Topology:
        topo = Topology("ansible")
        topo.add_node("urn:svc:a", "service")
        topo.add_node("urn:svc:b", "service")
        for via in order:
            topo.add_edge("urn:svc:a", "urn:svc:b", "DEPENDS_ON", via=via)
        return topo

    assert build(["obs_depends_on", "db_host"]).edges == build(["db_host", "obs_depends_on"]).edges
    assert build(["obs_depends_on", "db_host"]).edges[0].props_dict() == {"via": "db_host"}


def test_self_loops_are_dropped() -> None:
    topo = Topology("ansible")
    topo.add_node("urn:svc:a", "service")
    topo.add_edge("urn:svc:a", "urn:svc:a", "DEPENDS_ON")
    assert topo.edges == []


def test_labels_are_masked_when_added() -> None:
    topo = Topology("terraform")
    topo.add_node("urn:tf:x", "t", {"name": "x", "db_password": "hunter2-hunter2"})
    assert topo.nodes["urn:tf:x"].labels == {"name": "x", "db_password": "<SECRET>"}
