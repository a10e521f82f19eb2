from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_obs_provider.engine.topology.model import TopologySourceError
from airflow_obs_provider.engine.topology.terraform import (
    IDENTITY_FIELDS,
    StateRef,
    build_topology,
    parse_state,
    read_terraform,
    uses_s3,
)

FIXTURES = Path(__file__).resolve().parents[4] / "include" / "terraform"
NET = "urn:tf:module.network."
WEB = "urn:tf:module.web."


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _edges(topo: Any) -> set[tuple[str, str, str]]:
    return {(e.src, e.edge_type, e.dst) for e in topo.edges}


@pytest.fixture(scope="module")
def fixture_topology() -> Any:
    return read_terraform({"states": ["terraform"]}, base_dir=FIXTURES.parent)


def test_instances_of_count_for_each_and_modules_become_lower_case_urns(fixture_topology: Any) -> None:
    topo, stats = fixture_topology
    assert stats["states"] == 2
    assert f"{NET}aws_subnet.private[0]" in topo.nodes
    assert f"{NET}aws_subnet.private[2]" in topo.nodes
    assert f'{WEB}aws_instance.web["web-a"]' in topo.nodes
    assert "urn:tf:aws_db_instance.orders" in topo.nodes
    assert all(urn == urn.lower() for urn in topo.nodes)
    # data sources are lookups, not owned infrastructure
    assert not any(".data." in urn or urn.startswith("urn:tf:data.") for urn in topo.nodes)


def test_typed_links_follow_the_lb_stack_and_network(fixture_topology: Any) -> None:
    edges = _edges(fixture_topology[0])
    tg_web = f"{WEB}aws_lb_target_group.web"
    expected = {
        (f"{WEB}aws_lb_listener.https", "FORWARDS_TO", tg_web),
        (f"{WEB}aws_lb_listener.https", "PART_OF", f"{WEB}aws_lb.web"),
        (tg_web, "ROUTES_TO", f'{WEB}aws_instance.web["web-a"]'),
        (tg_web, "ROUTES_TO", f'{WEB}aws_instance.web["web-b"]'),
        ("urn:tf:aws_ecs_service.api", "ATTACHED_TO", "urn:tf:aws_lb_target_group.api"),
        ("urn:tf:aws_lb_listener_rule.api", "FORWARDS_TO", "urn:tf:aws_lb_target_group.api"),
        # typed links resolve across states: the app state's ids point into the network state
        (f'{WEB}aws_instance.web["web-a"]', "IN_SUBNET", f"{NET}aws_subnet.private[0]"),
        (f'{WEB}aws_instance.web["web-b"]', "IN_SUBNET", f"{NET}aws_subnet.private[1]"),
        (f"{NET}aws_subnet.private[0]", "IN_VPC", f"{NET}aws_vpc.main"),
        ("urn:tf:aws_db_instance.orders", "IN_SUBNET_GROUP", "urn:tf:aws_db_subnet_group.main"),
        ("urn:tf:aws_db_instance.orders", "SECURED_BY", f"{NET}aws_security_group.db"),
        ("urn:tf:aws_ecs_service.api", "RUNS_IN", "urn:tf:aws_ecs_cluster.main"),
    }
    assert expected <= edges
    # the instance is not routed to by the api target group
    assert ("urn:tf:aws_lb_target_group.api", "ROUTES_TO", f'{WEB}aws_instance.web["web-a"]') not in edges


def test_dependencies_become_depends_on_edges_also_for_unknown_types(fixture_topology: Any) -> None:
    topo, _ = fixture_topology
    edges = _edges(topo)
    assert topo.nodes[f"{NET}cloudflare_record.api"].type == "cloudflare_record"
    assert (f"{NET}cloudflare_record.api", "DEPENDS_ON", f"{NET}aws_vpc.main") in edges
    assert ("urn:tf:aws_db_instance.orders", "DEPENDS_ON", "urn:tf:random_password.db") in edges


def test_labels_hold_identity_fields_only(fixture_topology: Any) -> None:
    topo, _ = fixture_topology
    allowed = set(IDENTITY_FIELDS) | {"tf_type", "state", "module", "provider"}
    for node in topo.nodes.values():
        assert set(node.labels) <= allowed, node
    db = topo.nodes["urn:tf:aws_db_instance.orders"].labels
    assert db["arn"].endswith(":db:prod-orders")
    assert db["tf_type"] == "aws_db_instance" and db["provider"] == "aws"


def test_no_secret_attribute_value_reaches_a_label(fixture_topology: Any) -> None:
    topo, _ = fixture_topology
    labels = json.dumps([dict(n.labels) for n in topo.nodes.values()])
    for name in ("app.tfstate", "network.tfstate"):
        for res in _fixture(name)["resources"]:
            for inst in res["instances"]:
                for key, value in inst["attributes"].items():
                    if key in ("password", "result", "secret", "secret_string", "private_key_pem", "user_data",
                               "container_definitions", "ses_smtp_password_v4", "bcrypt_hash"):
                        assert str(value) not in labels, (res["type"], key)


def test_sensitive_identity_fields_are_not_copied() -> None:
    state = {"version": 4, "resources": [{"mode": "managed", "type": "x_token", "name": "t", "provider": "p",
                                          "instances": [{"attributes": {"id": "tok-123", "name": "n"},
                                                         "sensitive_attributes": [[{"type": "get_attr",
                                                                                    "value": "id"}]]}]}]}
    topo, _ = build_topology([(StateRef("s"), "s", state)])
    assert "id" not in topo.nodes["urn:tf:x_token.t"].labels
    assert topo.nodes["urn:tf:x_token.t"].labels["name"] == "n"


def test_same_module_instance_dependencies_stay_inside_their_module_instance() -> None:
    def res(module: str, type_: str, name: str, deps: list[str]) -> dict[str, Any]:
        return {"module": module, "mode": "managed", "type": type_, "name": name, "provider": "p",
                "instances": [{"attributes": {"id": f"{module}{name}"}, "dependencies": deps}]}

    state = {"version": 4, "resources": [
        res('module.svc["blue"]', "aws_instance", "a", ["module.svc.aws_security_group.sg"]),
        res('module.svc["blue"]', "aws_security_group", "sg", []),
        res('module.svc["green"]', "aws_instance", "a", ["module.svc.aws_security_group.sg"]),
        res('module.svc["green"]', "aws_security_group", "sg", []),
    ]}
    topo, _ = build_topology([(StateRef("s"), "s", state)])
    assert _edges(topo) == {
        ('urn:tf:module.svc["blue"].aws_instance.a', "DEPENDS_ON", 'urn:tf:module.svc["blue"].aws_security_group.sg'),
        ('urn:tf:module.svc["green"].aws_instance.a', "DEPENDS_ON",
         'urn:tf:module.svc["green"].aws_security_group.sg'),
    }


def test_workspaces_keep_equal_addresses_of_two_states_apart() -> None:
    state = _fixture("network.tfstate")
    with pytest.raises(TopologySourceError, match="workspace"):
        build_topology([(StateRef("a"), "a", state), (StateRef("b"), "b", copy.deepcopy(state))])
    topo, _ = build_topology([(StateRef("a", "prod"), "a", state), (StateRef("b", "stage"), "b", state)])
    assert "urn:tf:prod/module.network.aws_vpc.main" in topo.nodes
    assert "urn:tf:stage/module.network.aws_vpc.main" in topo.nodes


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.tfstate").write_text('{"version": 4, "resources": [')
    with pytest.raises(TopologySourceError, match=r"broken\.tfstate is not valid JSON"):
        read_terraform({"states": ["broken.tfstate"]}, base_dir=tmp_path)


def test_unknown_state_version_names_the_file_and_version() -> None:
    with pytest.raises(TopologySourceError, match=r"old\.tfstate has format version 3"):
        parse_state(json.dumps({"version": 3, "modules": []}), "old.tfstate")


def test_bad_configuration_is_named() -> None:
    with pytest.raises(TopologySourceError, match="terraform.states"):
        read_terraform({"states": []})
    with pytest.raises(TopologySourceError, match="unknown keys"):
        read_terraform({"states": ["x"], "bucket": "y"})
    with pytest.raises(TopologySourceError, match="does not exist"):
        read_terraform({"states": ["nope.tfstate"]}, base_dir=FIXTURES)


def test_uses_s3_only_when_a_state_is_on_s3() -> None:
    assert uses_s3({"states": ["a.tfstate", {"location": "s3://b/k", "workspace": "w"}]})
    assert not uses_s3({"states": ["a.tfstate"]})
    assert not uses_s3({})
