from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_obs_provider.engine.topology.ansible import (
    Inventory,
    project_from_config,
    read_ansible,
    read_inventory,
    read_plays,
)
from airflow_obs_provider.engine.topology.model import TopologySourceError

INCLUDE = Path(__file__).resolve().parents[4] / "include"
CFG = {"project": "ansible", "inventory": ["inventory/hosts.ini", "inventory/edge.yml"],
       "playbooks": ["playbooks/site.yml"]}
FIXTURE_SECRETS = ("Fixture-Ansible-DbPass-66f1", "Fixture-Ansible-Token-8c2d", "Fixture-Ansible-PgSuper-19aa")


def _edges(topo: Any) -> set[tuple[str, str, str]]:
    return {(e.src, e.edge_type, e.dst) for e in topo.edges}


@pytest.fixture(scope="module")
def fixture_topology() -> Any:
    return read_ansible(CFG, base_dir=INCLUDE)


def test_hosts_of_ini_and_yaml_inventories_are_members_of_their_groups(fixture_topology: Any) -> None:
    topo, stats = fixture_topology
    edges = _edges(topo)
    assert stats["hosts"] == 10
    assert ("urn:ansible:host:web1", "MEMBER_OF", "urn:ansible:group:web") in edges
    assert ("urn:ansible:host:cdn1", "MEMBER_OF", "urn:ansible:group:cdn") in edges  # from the YAML inventory
    # nested groups: INI :children and YAML children
    assert ("urn:ansible:group:web", "MEMBER_OF", "urn:ansible:group:app") in edges
    assert ("urn:ansible:group:app", "MEMBER_OF", "urn:ansible:group:prod") in edges
    assert ("urn:ansible:group:edge", "MEMBER_OF", "urn:ansible:group:prod") in edges
    assert not any(dst == "urn:ansible:group:all" for _, _, dst in edges)


def test_role_dependencies_from_meta(fixture_topology: Any) -> None:
    edges = _edges(fixture_topology[0])
    assert {("urn:ansible:role:nginx", "DEPENDS_ON", "urn:ansible:role:common"),
            ("urn:ansible:role:nginx", "DEPENDS_ON", "urn:ansible:role:monitoring"),
            ("urn:ansible:role:app", "DEPENDS_ON", "urn:ansible:role:python"),
            ("urn:ansible:role:python", "DEPENDS_ON", "urn:ansible:role:common")} <= edges


def test_roles_apply_to_the_hosts_their_plays_select(fixture_topology: Any) -> None:
    edges = _edges(fixture_topology[0])
    applies = {(s.rsplit(":", 1)[1], d.rsplit(":", 1)[1]) for s, t, d in edges if t == "APPLIES_TO"}
    assert {h for r, h in applies if r == "nginx"} == {"web1", "web2", "api1", "api2", "cdn1"}  # web:api + edge:!dns
    assert {h for r, h in applies if r == "app"} == {"web1", "web2", "api1", "api2", "worker1"}  # incl. include_role
    assert {h for r, h in applies if r == "postgres"} == {"db1"}
    assert ("haproxy", "lb1") in applies


def test_application_dependencies_follow_the_variable_convention(fixture_topology: Any) -> None:
    edges = _edges(fixture_topology[0])
    assert {
        ("urn:svc:storefront", "DEPENDS_ON", "urn:svc:checkout-api"),        # obs_depends_on: service name
        ("urn:svc:checkout-api", "DEPENDS_ON", "urn:svc:payments"),
        ("urn:svc:checkout-api", "DEPENDS_ON", "urn:db:postgresql:orders"),  # explicit urn and db_host: db1
        ("urn:svc:checkout-api", "DEPENDS_ON", "urn:db:redis:cache"),        # cache_host: an ansible_host address
        ("urn:svc:haproxy", "DEPENDS_ON", "urn:svc:storefront"),             # obs_depends_on: host names
        ("urn:svc:cdn-gateway", "DEPENDS_ON", "urn:svc:haproxy"),            # origin_host: lb1
        ("urn:svc:order-worker", "DEPENDS_ON", "urn:db:redis:cache"),        # queue_host: redis1
        ("urn:ansible:host:api1", "RUNS", "urn:svc:checkout-api"),
        ("urn:ansible:host:db1", "RUNS", "urn:db:postgresql:orders"),
    } <= edges
    # ansible_host itself is an address, never a dependency
    assert not any(t == "DEPENDS_ON" and s == d for s, t, d in edges)


def test_variable_values_are_not_stored(fixture_topology: Any) -> None:
    text = repr([(n.urn, dict(n.labels)) for n in fixture_topology[0].nodes.values()] + fixture_topology[0].edges)
    for secret in FIXTURE_SECRETS:
        assert secret not in text


def test_host_patterns() -> None:
    inv = Inventory.from_list_json({
        "_meta": {"hostvars": {h: {} for h in ("w1", "w2", "a1", "d1", "x9")}},
        "all": {"children": ["ungrouped", "web", "api", "db", "prod"]},
        "ungrouped": {"hosts": ["x9"]},
        "web": {"hosts": ["w1", "w2"]}, "api": {"hosts": ["a1"]}, "db": {"hosts": ["d1"]},
        "prod": {"children": ["web", "db"]},
    })
    assert inv.select("web:api") == {"w1", "w2", "a1"}
    assert inv.select("web,api") == {"w1", "w2", "a1"}
    assert inv.select("prod:!db") == {"w1", "w2"}
    assert inv.select("prod:&web") == {"w1", "w2"}
    assert inv.select("all:!prod") == {"a1", "x9"}
    assert inv.select("w*") == {"w1", "w2"}
    assert inv.select("~(a|d)1") == {"a1", "d1"}
    assert inv.select("nothing") == set()


def test_missing_inventory_is_a_clear_error() -> None:
    with pytest.raises(TopologySourceError, match=r"inventory/missing\.ini does not exist"):
        project_from_config({"project": "ansible", "inventory": ["inventory/missing.ini"]}, INCLUDE)


def test_unparsable_inventory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("all:\n  hosts: [\n")
    project = project_from_config({"project": ".", "inventory": ["broken.yml"]}, tmp_path)
    with pytest.raises(TopologySourceError, match=r"ansible inventory broken\.yml cannot be read: .*broken\.yml"):
        read_inventory(project)


def test_garbage_ini_inventory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web\nweb1 ansible_host=\n[web:children\n")
    project = project_from_config({"project": ".", "inventory": ["hosts.ini"]}, tmp_path)
    with pytest.raises(TopologySourceError, match=r"ansible inventory hosts\.ini cannot be read"):
        read_inventory(project)


def test_broken_playbook_is_named(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text("- hosts: all\n  roles: [a\n")
    with pytest.raises(TopologySourceError, match=r"playbook site\.yml is not valid YAML"):
        read_plays(tmp_path / "site.yml", tmp_path)
