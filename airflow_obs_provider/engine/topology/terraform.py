"""Terraform state (JSON format version 4) -> topology nodes and edges.

Tenant block (``tenants[].terraform`` in the ETL YAML)::

    terraform:
      states:                       # files, folders (every *.tfstate / *.json inside) or s3://bucket/key
        - terraform/network.tfstate
        - {location: s3://tf-states/prod/app.tfstate, workspace: prod}
      s3_endpoint_url: http://...   # optional; otherwise from SourceSecrets (env or Airflow connection)
      s3_region: eu-west-1          # optional

Every managed resource instance becomes ``urn:tf:<address>`` (``urn:tf:<workspace>/<address>``
when the state names a workspace, which keeps equal addresses of different states apart).
State files hold secrets (passwords, private keys, tokens): only the identity fields
``arn``, ``id`` and ``name`` are copied into labels, never any other attribute value.
Other attributes are only *read* to resolve typed links (:data:`LINKS`), whose props
name the attribute path, not its value.

Edges point the way traffic or containment goes: ``listener FORWARDS_TO target group
ROUTES_TO instance IN_SUBNET subnet IN_VPC vpc``; every instance also ``DEPENDS_ON`` the
instances of the resources in its ``dependencies``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_obs_provider.engine.secrets import SourceSecrets
from airflow_obs_provider.engine.topology.model import Topology, TopologySourceError

STATE_VERSION = 4
IDENTITY_FIELDS = ("arn", "id", "name")
_CONFIG_KEYS = {"states", "s3_endpoint_url", "s3_region", "allow_mass_close"}
_STATE_SUFFIXES = (".tfstate", ".json")
_INSTANCE_KEY = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Ref:
    """Where a typed link's endpoint is: an attribute path (lists are walked) resolving to ``types``."""

    path: str
    types: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A typed edge derived from attributes; ``src``/``dst`` of None mean the resource itself."""

    resource_type: str
    edge_type: str
    src: Ref | None = None
    dst: Ref | None = None


_LB = ("aws_lb", "aws_alb")
_TG = ("aws_lb_target_group", "aws_alb_target_group")
_LISTENER = ("aws_lb_listener", "aws_alb_listener")
_SUBNET = ("aws_subnet",)
_VPC = ("aws_vpc",)
_SG = ("aws_security_group",)
_TARGETS = ("aws_instance", "aws_lambda_function", "aws_lb", "aws_alb")

LINKS: tuple[Link, ...] = (
    *(Link(t, "PART_OF", dst=Ref("load_balancer_arn", _LB)) for t in _LISTENER),
    *(Link(t, "FORWARDS_TO", dst=Ref("default_action.target_group_arn", _TG)) for t in _LISTENER),
    *(Link(t, "FORWARDS_TO", dst=Ref("default_action.forward.target_group.arn", _TG)) for t in _LISTENER),
    Link("aws_lb_listener_rule", "PART_OF", dst=Ref("listener_arn", _LISTENER)),
    Link("aws_lb_listener_rule", "FORWARDS_TO", dst=Ref("action.target_group_arn", _TG)),
    Link("aws_lb_listener_rule", "FORWARDS_TO", dst=Ref("action.forward.target_group.arn", _TG)),
    *(Link(t, "ROUTES_TO", src=Ref("target_group_arn", _TG), dst=Ref("target_id", _TARGETS))
      for t in ("aws_lb_target_group_attachment", "aws_alb_target_group_attachment")),
    Link("aws_autoscaling_group", "ROUTES_TO", src=Ref("target_group_arns", _TG)),
    Link("aws_autoscaling_group", "IN_SUBNET", dst=Ref("vpc_zone_identifier", _SUBNET)),
    # The service registers its tasks with the target group it is attached to.
    Link("aws_ecs_service", "ATTACHED_TO", dst=Ref("load_balancer.target_group_arn", _TG)),
    Link("aws_ecs_service", "RUNS_IN", dst=Ref("cluster", ("aws_ecs_cluster",))),
    Link("aws_ecs_service", "USES", dst=Ref("task_definition", ("aws_ecs_task_definition",))),
    Link("aws_ecs_service", "IN_SUBNET", dst=Ref("network_configuration.subnets", _SUBNET)),
    Link("aws_ecs_service", "SECURED_BY", dst=Ref("network_configuration.security_groups", _SG)),
    Link("aws_instance", "IN_SUBNET", dst=Ref("subnet_id", _SUBNET)),
    Link("aws_instance", "SECURED_BY", dst=Ref("vpc_security_group_ids", _SG)),
    *(Link(t, "IN_SUBNET", dst=Ref("subnets", _SUBNET)) for t in _LB),
    *(Link(t, "SECURED_BY", dst=Ref("security_groups", _SG)) for t in _LB),
    *(Link(t, "IN_VPC", dst=Ref("vpc_id", _VPC)) for t in ("aws_subnet", "aws_security_group", *_TG)),
    Link("aws_db_instance", "IN_SUBNET_GROUP", dst=Ref("db_subnet_group_name", ("aws_db_subnet_group",))),
    Link("aws_db_instance", "SECURED_BY", dst=Ref("vpc_security_group_ids", _SG)),
    Link("aws_db_subnet_group", "IN_SUBNET", dst=Ref("subnet_ids", _SUBNET)),
)

_LINKS_BY_TYPE: dict[str, list[Link]] = defaultdict(list)
for _link in LINKS:
    _LINKS_BY_TYPE[_link.resource_type].append(_link)


@dataclass(frozen=True)
class StateRef:
    location: str
    workspace: str | None = None


@dataclass(frozen=True)
class _Instance:
    urn: str
    type: str
    module_instance: str  # module path with instance keys: module.app["blue"]
    config_address: str  # resource address without any instance key, as in `dependencies`
    attributes: Mapping[str, Any]
    dependencies: tuple[str, ...]
    state: str
    provider: str | None
    sensitive: frozenset[str]  # top-level attributes Terraform marked sensitive


# ---------------------------------------------------------------------------
# Reading state files
# ---------------------------------------------------------------------------
def state_refs(cfg: Mapping[str, Any]) -> list[StateRef]:
    """Validate a tenant's ``terraform:`` block and return the states it names."""
    if not isinstance(cfg, Mapping) or not cfg:
        raise TopologySourceError("terraform: the tenant has no 'terraform' block with a 'states' list")
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise TopologySourceError(f"terraform: unknown keys {sorted(unknown)} (known: {sorted(_CONFIG_KEYS)})")
    states = cfg.get("states")
    if isinstance(states, str):
        states = [states]
    if not isinstance(states, list) or not states:
        raise TopologySourceError("terraform.states must be a non-empty list of paths or s3:// URLs")
    refs = []
    for i, item in enumerate(states):
        if isinstance(item, str):
            refs.append(StateRef(item))
        elif isinstance(item, Mapping) and isinstance(item.get("location"), str):
            workspace = item.get("workspace")
            refs.append(StateRef(item["location"], str(workspace).strip() if workspace else None))
        else:
            raise TopologySourceError(f"terraform.states[{i}] must be a path, an s3:// URL or {{location, workspace}}")
    return refs


def uses_s3(cfg: Mapping[str, Any]) -> bool:
    """Whether any configured state lives on S3 (only then are S3 credentials needed)."""
    try:
        return any(ref.location.startswith("s3://") for ref in state_refs(cfg))
    except TopologySourceError:
        return False  # the run itself reports the bad block, inside its ledger window


def _local_files(location: str, base_dir: Path | None) -> list[Path]:
    p = Path(location).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(_STATE_SUFFIXES))
        if not files:
            raise TopologySourceError(f"terraform state folder {location} holds no *.tfstate or *.json file")
        return files
    if not p.is_file():
        raise TopologySourceError(f"terraform state {location} does not exist")
    return [p]


def _read_s3(url: str, cfg: Mapping[str, Any], secrets: SourceSecrets) -> bytes:
    from airflow_obs_provider.engine.oo.storage import s3_filesystem

    try:
        s3 = s3_filesystem(secrets, cfg.get("s3_endpoint_url"), cfg.get("s3_region"))
        with s3.open_input_stream(url[len("s3://"):]) as stream:
            return bytes(stream.read())
    except (OSError, ValueError) as exc:
        raise TopologySourceError(f"terraform state {url} cannot be read from S3: {secrets.scrub(str(exc))}") from None


def parse_state(data: bytes | str, name: str) -> dict[str, Any]:
    """Decode one state file, failing with the file's name on bad JSON or an unknown format version."""
    try:
        state = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TopologySourceError(f"terraform state {name} is not valid JSON: {exc}") from None
    if not isinstance(state, dict):
        raise TopologySourceError(f"terraform state {name} is not a JSON object")
    version = state.get("version")
    if version != STATE_VERSION:
        raise TopologySourceError(
            f"terraform state {name} has format version {version!r}; only version {STATE_VERSION} "
            "(Terraform >= 0.12, OpenTofu) is supported")
    if "resources" not in state:  # every v4 state has it, even an empty one: without it, it is not a state
        raise TopologySourceError(f"terraform state {name} has no 'resources' key: not a complete Terraform state")
    if not isinstance(state["resources"], list):
        raise TopologySourceError(f"terraform state {name}: 'resources' must be a list")
    return state


def load_states(cfg: Mapping[str, Any], *, base_dir: Path | None = None,
                secrets: SourceSecrets | None = None) -> list[tuple[StateRef, str, dict[str, Any]]]:
    """Every configured state as (its reference, a display name, the decoded JSON)."""
    secrets = secrets or SourceSecrets()
    loaded = []
    for ref in state_refs(cfg):
        if ref.location.startswith("s3://"):
            loaded.append((ref, ref.location, parse_state(_read_s3(ref.location, cfg, secrets), ref.location)))
            continue
        for path in _local_files(ref.location, base_dir):
            name = path.name if path.name in ref.location else f"{ref.location}/{path.name}"
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TopologySourceError(f"terraform state {name} cannot be read: {exc.strerror}") from None
            loaded.append((ref, name, parse_state(data, name)))
    return loaded


# ---------------------------------------------------------------------------
# Resources -> nodes and edges
# ---------------------------------------------------------------------------
def _index_suffix(index_key: Any) -> str:
    if index_key is None:
        return ""
    if isinstance(index_key, int) and not isinstance(index_key, bool):
        return f"[{index_key}]"
    return "[" + json.dumps(str(index_key)) + "]"


def _sensitive_top_level(instance: Mapping[str, Any]) -> set[str]:
    """Top-level attribute names Terraform marked sensitive (their values are never copied)."""
    names: set[str] = set()
    for path in instance.get("sensitive_attributes") or []:
        steps = path if isinstance(path, list) else [path]
        if steps and isinstance(steps[0], Mapping) and steps[0].get("type") == "get_attr":
            names.add(str(steps[0].get("value")))
    return names


def _provider_name(provider: Any) -> str | None:
    m = re.search(r'"(?:[^"/]+/)*([^"/]+)"', str(provider or ""))
    return m.group(1) if m else None


def _instances(state: Mapping[str, Any], ref: StateRef, name: str) -> Iterator[_Instance]:
    prefix = f"urn:tf:{ref.workspace}/" if ref.workspace else "urn:tf:"
    for i, res in enumerate(state.get("resources") or []):
        if not isinstance(res, Mapping) or not res.get("type") or not res.get("name"):
            raise TopologySourceError(f"terraform state {name}: resources[{i}] has no type/name")
        if res.get("mode", "managed") != "managed":
            continue  # data sources describe lookups, not infrastructure this state owns
        module = str(res.get("module") or "")
        base = ".".join(p for p in (module, str(res["type"]), str(res["name"])) if p)
        if not isinstance(res.get("instances"), list):
            raise TopologySourceError(f"terraform state {name}: {base} has no 'instances' list")
        for inst in res["instances"]:
            if not isinstance(inst, Mapping):
                raise TopologySourceError(f"terraform state {name}: {base} has a malformed instance")
            attrs = inst.get("attributes")
            yield _Instance(
                urn=prefix + base + _index_suffix(inst.get("index_key")),
                type=str(res["type"]),
                module_instance=module,
                config_address=_INSTANCE_KEY.sub("", base),
                attributes=attrs if isinstance(attrs, Mapping) else {},
                dependencies=tuple(str(d) for d in inst.get("dependencies") or []),
                state=name,
                provider=_provider_name(res.get("provider")),
                sensitive=frozenset(_sensitive_top_level(inst)),
            )


def _labels(inst: _Instance) -> dict[str, Any]:
    """Identity only: the state holds secrets in every other attribute."""
    labels: dict[str, Any] = {"tf_type": inst.type, "state": inst.state}
    if inst.module_instance:
        labels["module"] = inst.module_instance
    if inst.provider:
        labels["provider"] = inst.provider
    for key in IDENTITY_FIELDS:
        value = inst.attributes.get(key)
        if key not in inst.sensitive and isinstance(value, str | int) and not isinstance(value, bool):
            labels[key] = value
    return labels


def _values_at(attrs: Any, path: str) -> Iterator[str]:
    """Scalar values at a dotted path; lists (nested blocks, sets) are walked at every step."""
    current: list[Any] = [attrs]
    for step in path.split("."):
        nxt: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Mapping) and step in item:
                    nxt.append(item[step])
        current = nxt
    for value in current:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                yield item


class _IdentityIndex:
    """Identity value (ARN, id, name) -> instance URNs by type, across every state of the tenant."""

    def __init__(self, instances: Iterable[_Instance]) -> None:
        self._by_value: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for inst in instances:
            for key in IDENTITY_FIELDS:
                value = inst.attributes.get(key)
                if isinstance(value, str) and value:
                    self._by_value[value][inst.type].add(inst.urn)

    def resolve(self, value: str, types: tuple[str, ...]) -> list[str]:
        found = self._by_value.get(value)
        if not found:
            return []
        return sorted(urn for t in types for urn in found.get(t, ()))


def _endpoints(inst: _Instance, ref: Ref | None, index: _IdentityIndex) -> list[str]:
    if ref is None:
        return [inst.urn]
    return sorted({urn for value in _values_at(inst.attributes, ref.path) for urn in index.resolve(value, ref.types)})


def build_topology(states: Iterable[tuple[StateRef, str, Mapping[str, Any]]]) -> tuple[Topology, dict[str, int]]:
    """Nodes and edges of all states together (typed links resolve across states)."""
    states = list(states)
    topo = Topology("terraform")
    instances: list[_Instance] = []
    origin: dict[str, str] = {}
    for ref, name, state in states:
        for inst in _instances(state, ref, name):
            if inst.urn in origin:
                raise TopologySourceError(
                    f"terraform: {inst.urn} is in both {origin[inst.urn]} and {name}; give the states distinct "
                    "'workspace' names")
            origin[inst.urn] = name
            instances.append(inst)
            topo.add_node(inst.urn, inst.type, _labels(inst))

    by_config: dict[tuple[str, str], list[_Instance]] = defaultdict(list)
    for inst in instances:
        by_config[(inst.state, inst.config_address)].append(inst)
    stats = {"states": len(states), "resources": len(instances),
             "unresolved_dependencies": 0, "typed_links": 0}

    for inst in instances:
        for dep in inst.dependencies:
            targets = by_config.get((inst.state, _INSTANCE_KEY.sub("", dep)), [])
            # A module instance's resources depend on the same module instance's resources.
            same_module = [t for t in targets if t.module_instance == inst.module_instance]
            if same_module and _INSTANCE_KEY.sub("", inst.module_instance) == _INSTANCE_KEY.sub(
                    "", same_module[0].module_instance):
                targets = same_module
            if not targets:
                stats["unresolved_dependencies"] += 1
            for target in targets:
                topo.add_edge(inst.urn, target.urn, "DEPENDS_ON")

    index = _IdentityIndex(instances)
    for inst in instances:
        for link in _LINKS_BY_TYPE.get(inst.type, ()):
            via = (link.dst or link.src or Ref("", ())).path
            for src in _endpoints(inst, link.src, index):
                for dst in _endpoints(inst, link.dst, index):
                    topo.add_edge(src, dst, link.edge_type, via=f"{inst.type}.{via}")
                    stats["typed_links"] += src != dst
    return topo, stats


def read_terraform(cfg: Mapping[str, Any], *, base_dir: Path | None = None,
                   secrets: SourceSecrets | None = None) -> tuple[Topology, dict[str, int]]:
    """Read every state of a tenant's ``terraform:`` block into one topology (plus reading figures)."""
    return build_topology(load_states(cfg, base_dir=base_dir, secrets=secrets))
