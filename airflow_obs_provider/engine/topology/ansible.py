"""An Ansible project -> topology nodes and edges.

Tenant block (``tenants[].ansible`` in the ETL YAML; paths relative to ``project``,
which is relative to the configuration file)::

    ansible:
      project: ansible
      inventory: [inventory/hosts.ini, inventory/edge.yml]   # INI and/or YAML, group_vars/host_vars beside them
      playbooks: [playbooks/site.yml]                        # optional; import_playbook is followed
      roles_path: [roles]                                    # optional (default: roles)

The inventory is read by ``ansible-inventory --list`` (Ansible's own parser: nested
groups, group_vars/host_vars precedence), run from the Python environment's bin folder.

Edges (source ``ansible``):

- ``urn:ansible:host:<h> MEMBER_OF urn:ansible:group:<g>``, and ``group MEMBER_OF parent``
  for nested groups (the implicit ``all``/``ungrouped`` groups are left out);
- ``urn:ansible:role:<r> DEPENDS_ON urn:ansible:role:<d>`` from ``meta/main.yml``;
- ``role APPLIES_TO host`` for every host a play's ``hosts:`` pattern selects (``roles:``
  and ``include_role``/``import_role`` tasks);
- application dependencies, by this variable convention (host or group vars):
  a host runs the service ``obs_service_urn`` if set, else ``urn:svc:<service_name>``,
  else ``urn:svc:<host name>`` (``host RUNS service``); the service ``DEPENDS_ON``
  every entry of ``obs_depends_on`` (an inventory host name -> that host's service,
  a ``urn:...`` -> itself, anything else -> ``urn:svc:<entry>``) and every host named
  by a variable ending in ``_host`` / ``_hosts`` (a host name or ``ansible_host``
  address of another inventory host; other values are ignored).

Variable values are never stored: only host names, addresses and service names.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_obs_provider.engine.masking import mask_text
from airflow_obs_provider.engine.topology.model import Topology, TopologySourceError

DEPENDS_ON_VAR = "obs_depends_on"
SERVICE_NAME_VAR = "service_name"
SERVICE_URN_VAR = "obs_service_urn"
_CONFIG_KEYS = {"project", "inventory", "playbooks", "roles_path", "allow_mass_close"}
_IMPLICIT_GROUPS = {"all", "ungrouped"}
_INCLUDE_ROLE = {"include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"}
_IMPORT_PLAYBOOK = {"import_playbook", "ansible.builtin.import_playbook"}
_TASK_LISTS = ("pre_tasks", "tasks", "post_tasks", "handlers")


@dataclass
class Inventory:
    """What ``ansible-inventory --list`` says: hosts with their vars, and the group tree."""

    hostvars: dict[str, dict[str, Any]]
    group_hosts: dict[str, set[str]] = field(default_factory=dict)  # direct members
    group_children: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_list_json(cls, data: Mapping[str, Any]) -> Inventory:
        inv = cls(hostvars={h: dict(v or {}) for h, v in (data.get("_meta", {}).get("hostvars") or {}).items()})
        for name, body in data.items():
            if name == "_meta" or not isinstance(body, Mapping):
                continue
            inv.group_hosts[name] = set(body.get("hosts") or [])
            inv.group_children[name] = set(body.get("children") or [])
            inv.hostvars.update({h: inv.hostvars.get(h, {}) for h in inv.group_hosts[name]})
        return inv

    @property
    def hosts(self) -> list[str]:
        return sorted(self.hostvars)

    @property
    def groups(self) -> list[str]:
        return sorted((set(self.group_hosts) | set(self.group_children)) - _IMPLICIT_GROUPS)

    def hosts_of_group(self, group: str) -> set[str]:
        if group == "all":
            return set(self.hostvars)
        seen, todo, found = set(), [group], set()
        while todo:
            g = todo.pop()
            if g in seen:
                continue
            seen.add(g)
            found |= self.group_hosts.get(g, set())
            todo.extend(self.group_children.get(g, ()))
        return found

    def select(self, pattern: str) -> set[str]:
        """Hosts a play's ``hosts:`` pattern selects (``a:b``, ``a,b``, ``&``, ``!``, ``*`` wildcards, ``~regex``)."""
        union: set[str] = set()
        intersections: list[set[str]] = []
        exclusions: set[str] = set()
        for term in _pattern_terms(pattern):
            if term.startswith("&"):
                intersections.append(self._term_hosts(term[1:]))
            elif term.startswith("!"):
                exclusions |= self._term_hosts(term[1:])
            else:
                union |= self._term_hosts(term)
        for other in intersections:
            union &= other
        return union - exclusions

    def _term_hosts(self, term: str) -> set[str]:
        if term in ("all", "*"):
            return set(self.hostvars)
        if term.startswith("~"):
            regex = re.compile(term[1:])
            return {h for h in self.hostvars if regex.match(h)} | {
                h for g in self.group_hosts if regex.match(g) for h in self.hosts_of_group(g)}
        if any(ch in term for ch in "*?["):
            return {h for h in self.hostvars if fnmatch.fnmatchcase(h, term)} | {
                h for g in self.group_hosts if fnmatch.fnmatchcase(g, term) for h in self.hosts_of_group(g)}
        if term in self.group_hosts or term in self.group_children:
            return self.hosts_of_group(term)
        return {term} if term in self.hostvars else set()


def _pattern_terms(pattern: str) -> Iterator[str]:
    for part in re.split(r"[,:](?![^\[]*\])", pattern):
        part = part.strip()
        if part:
            yield part


# ---------------------------------------------------------------------------
# Reading the project
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AnsibleProject:
    root: Path
    inventories: tuple[Path, ...]
    playbooks: tuple[Path, ...]
    roles_paths: tuple[Path, ...]


def project_from_config(cfg: Mapping[str, Any], base_dir: Path | None = None) -> AnsibleProject:
    """Validate a tenant's ``ansible:`` block."""
    if not isinstance(cfg, Mapping) or not cfg:
        raise TopologySourceError("ansible: the tenant has no 'ansible' block with an 'inventory'")
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise TopologySourceError(f"ansible: unknown keys {sorted(unknown)} (known: {sorted(_CONFIG_KEYS)})")
    root = Path(str(cfg.get("project") or ".")).expanduser()
    if not root.is_absolute() and base_dir is not None:
        root = base_dir / root
    if not root.is_dir():
        raise TopologySourceError(f"ansible.project {cfg.get('project')!r} is not a folder")
    root = root.resolve()

    def paths(key: str, default: list[str] | None = None) -> tuple[Path, ...]:
        raw = cfg.get(key, default)
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise TopologySourceError(f"ansible.{key} must be a path or a list of paths")
        return tuple(root / p for p in raw)

    inventories = paths("inventory")
    if not inventories:
        raise TopologySourceError("ansible.inventory must name at least one inventory (INI or YAML)")
    for inv in inventories:
        if not inv.exists():
            raise TopologySourceError(f"ansible inventory {inv.relative_to(root)} does not exist")
    return AnsibleProject(root, inventories, paths("playbooks", []), paths("roles_path", ["roles"]))


def _ansible_inventory_bin() -> str:
    """``ansible-inventory`` of this Python environment (a venv has it beside its interpreter)."""
    local = Path(sys.executable).parent / "ansible-inventory"
    if local.exists():
        return str(local)
    found = shutil.which("ansible-inventory")
    if not found:
        raise TopologySourceError("ansible-inventory is not installed (pip install ansible-core)")
    return found


def read_inventory(project: AnsibleProject, timeout: float = 300) -> Inventory:
    """Run ``ansible-inventory --list``; any unparsable source is an error, never a silent empty inventory."""
    cmd = [_ansible_inventory_bin()]
    for inv in project.inventories:
        cmd += ["-i", str(inv)]
    cmd.append("--list")
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
           "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_LOCALHOST_WARNING": "False"}
    names = ", ".join(str(p.relative_to(project.root)) for p in project.inventories)
    try:
        done = subprocess.run(cmd, cwd=project.root, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise TopologySourceError(f"ansible inventory {names}: ansible-inventory ran over {timeout:.0f} s") from None
    if done.returncode != 0:
        raise TopologySourceError(f"ansible inventory {names} cannot be read: {_ansible_error(done.stderr)}")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise TopologySourceError(f"ansible inventory {names}: ansible-inventory printed no JSON ({exc})") from None
    inventory = Inventory.from_list_json(data)
    if not inventory.hosts:  # an empty or wrong file, not an observation of infrastructure with no hosts
        raise TopologySourceError(f"ansible inventory {names} lists no host: refusing an empty observation "
                                  "(check ansible.inventory)")
    return inventory


def _ansible_error(stderr: str) -> str:
    """The useful lines of ansible's stderr (errors first), masked, one line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith("[ERROR]")] + [
        ln for ln in lines if ln.startswith("[WARNING]: Failed to parse") or ln.startswith("[WARNING]: Unable")]
    return mask_text(" | ".join(picked or lines[-3:]))[:1000] or "ansible-inventory failed"


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologySourceError(f"ansible {what} {path.name} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TopologySourceError(f"ansible {what} {path.name} is not valid YAML: {exc}") from None


def _role_name(ref: Any) -> str | None:
    """A role reference as written in plays and meta: a name, a dict with role/name, or a path."""
    if isinstance(ref, Mapping):
        ref = ref.get("role") or ref.get("name")
    if not isinstance(ref, str) or not ref.strip() or "{{" in ref:
        return None
    return ref.strip().rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Play:
    hosts: str
    roles: tuple[str, ...]
    playbook: str


def read_plays(playbook: Path, root: Path, seen: set[Path] | None = None) -> list[Play]:
    """Plays of a playbook, following ``import_playbook``."""
    seen = seen if seen is not None else set()
    playbook = playbook.resolve()
    if playbook in seen:
        return []
    seen.add(playbook)
    if not playbook.is_file():
        raise TopologySourceError(f"ansible playbook {playbook.name} does not exist")
    doc = _load_yaml(playbook, "playbook") or []
    if not isinstance(doc, list):
        raise TopologySourceError(f"ansible playbook {playbook.name} must be a list of plays")
    plays: list[Play] = []
    for entry in doc:
        if not isinstance(entry, Mapping):
            continue
        imported = next((entry[k] for k in _IMPORT_PLAYBOOK if k in entry), None)
        if imported is not None:
            if isinstance(imported, str) and "{{" not in imported:
                plays += read_plays(playbook.parent / imported, root, seen)
            continue
        hosts = entry.get("hosts")
        if isinstance(hosts, list):
            hosts = ",".join(str(h) for h in hosts)
        if not isinstance(hosts, str):
            continue
        roles = [_role_name(r) for r in entry.get("roles") or []]
        for key in _TASK_LISTS:
            roles += [_role_name(task.get(k)) for task in entry.get(key) or [] if isinstance(task, Mapping)
                      for k in _INCLUDE_ROLE if k in task]
        plays.append(Play(hosts, tuple(sorted({r for r in roles if r})), str(playbook.relative_to(root.resolve()))))
    return plays


def role_dependencies(role: str, search: Iterable[Path]) -> tuple[Path | None, list[str]]:
    """A role's folder and the roles its ``meta/main.yml`` depends on."""
    for base in search:
        folder = base / role
        if folder.is_dir():
            meta = next((folder / "meta" / n for n in ("main.yml", "main.yaml") if (folder / "meta" / n).exists()),
                        None)
            if meta is None:
                return folder, []
            doc = _load_yaml(meta, f"role {role} meta") or {}
            deps = doc.get("dependencies") if isinstance(doc, Mapping) else None
            return folder, [d for d in (_role_name(r) for r in deps or []) if d]
    return None, []


# ---------------------------------------------------------------------------
# Building the topology
# ---------------------------------------------------------------------------
def _host_urn(host: str) -> str:
    return f"urn:ansible:host:{host}"


def _service_urn(host: str, hostvars: Mapping[str, Any]) -> str:
    explicit = hostvars.get(SERVICE_URN_VAR)
    if isinstance(explicit, str) and explicit.startswith("urn:"):
        return explicit
    name = hostvars.get(SERVICE_NAME_VAR)
    return f"urn:svc:{name if isinstance(name, str) and name.strip() else host}"


def _urn_type(urn: str) -> str:
    """``urn:svc:...`` -> service, ``urn:db:...`` -> db ... (the URN kinds of design §4)."""
    kind = urn.split(":", 2)[1] if urn.count(":") >= 2 else "service"
    return {"svc": "service"}.get(kind, kind)


def _named_hosts(value: Any, by_address: Mapping[str, str], hosts: Mapping[str, Any]) -> Iterator[str]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            if item in hosts:
                yield item
            elif item in by_address:
                yield by_address[item]


def app_dependencies(inv: Inventory) -> list[tuple[str, str, str, str]]:
    """(source host, target urn, target host or '', variable) for every declared dependency."""
    by_address: dict[str, str] = {}
    for host, hv in sorted(inv.hostvars.items()):
        addr = hv.get("ansible_host")
        if isinstance(addr, str):
            by_address.setdefault(addr, host)
    found = []
    for host, hv in sorted(inv.hostvars.items()):
        declared = hv.get(DEPENDS_ON_VAR) or []
        for item in declared if isinstance(declared, list) else [declared]:
            if not isinstance(item, str) or not item.strip():
                continue
            item = item.strip()
            if item in inv.hostvars:
                found.append((host, _service_urn(item, inv.hostvars[item]), item, DEPENDS_ON_VAR))
            else:
                found.append((host, item if item.startswith("urn:") else f"urn:svc:{item}", "", DEPENDS_ON_VAR))
        for var, value in sorted(hv.items()):
            if var.startswith("ansible_") or not (var.endswith("_host") or var.endswith("_hosts")):
                continue
            for target in _named_hosts(value, by_address, inv.hostvars):
                if target != host:
                    found.append((host, _service_urn(target, inv.hostvars[target]), target, var))
    return found


def build_topology(project: AnsibleProject, inv: Inventory) -> tuple[Topology, dict[str, int]]:
    topo = Topology("ansible")
    for host in inv.hosts:
        hv = inv.hostvars[host]
        labels = {"name": host}
        if isinstance(hv.get("ansible_host"), str):
            labels["ansible_host"] = hv["ansible_host"]
        topo.add_node(_host_urn(host), "ansible_host", labels)
    for group in inv.groups:
        topo.add_node(f"urn:ansible:group:{group}", "ansible_group", {"name": group})
    for group in inv.groups:
        for host in inv.group_hosts.get(group, ()):
            topo.add_edge(_host_urn(host), f"urn:ansible:group:{group}", "MEMBER_OF")
        for child in inv.group_children.get(group, ()):
            if child not in _IMPLICIT_GROUPS:
                topo.add_edge(f"urn:ansible:group:{child}", f"urn:ansible:group:{group}", "MEMBER_OF")

    plays = [p for pb in project.playbooks for p in read_plays(pb, project.root)]
    search = list(project.roles_paths) + sorted({(project.root / p.playbook).parent / "roles" for p in plays})
    roles: dict[str, list[str]] = {}
    todo = sorted({r for p in plays for r in p.roles})
    while todo:
        role = todo.pop()
        if role in roles:
            continue
        folder, deps = role_dependencies(role, search)
        roles[role] = deps
        labels = {"name": role}
        if folder is not None:
            labels["path"] = str(folder.relative_to(project.root)) if folder.is_relative_to(project.root) else role
        topo.add_node(f"urn:ansible:role:{role}", "ansible_role", labels)
        todo.extend(d for d in deps if d not in roles)
    for role, deps in roles.items():
        for dep in deps:
            topo.add_edge(f"urn:ansible:role:{role}", f"urn:ansible:role:{dep}", "DEPENDS_ON")
    unmatched = 0
    for play in plays:
        hosts = inv.select(play.hosts)
        unmatched += not hosts
        for role in play.roles:
            for host in hosts:
                topo.add_edge(f"urn:ansible:role:{role}", _host_urn(host), "APPLIES_TO", playbook=play.playbook)

    declared = app_dependencies(inv)
    services: dict[str, str] = {}
    for host, target_urn, target_host, _var in declared:
        services[host] = _service_urn(host, inv.hostvars[host])
        if target_host:
            services[target_host] = target_urn
    for host, hv in inv.hostvars.items():
        if SERVICE_NAME_VAR in hv or SERVICE_URN_VAR in hv:
            services[host] = _service_urn(host, hv)
    for host, svc in sorted(services.items()):
        topo.add_node(svc, _urn_type(svc), {"declared_by": "ansible"})
        topo.add_edge(_host_urn(host), svc, "RUNS")
    for host, target_urn, _target_host, var in declared:
        topo.add_node(target_urn, _urn_type(target_urn), {"declared_by": "ansible"})
        topo.add_edge(services[host], target_urn, "DEPENDS_ON", via=var)
    stats = {"hosts": len(inv.hosts), "groups": len(inv.groups), "plays": len(plays), "roles": len(roles),
             "plays_matching_no_host": unmatched, "app_dependencies": len(declared)}
    return topo, stats


def read_ansible(cfg: Mapping[str, Any], *, base_dir: Path | None = None) -> tuple[Topology, dict[str, int]]:
    """Read a tenant's ``ansible:`` block into one topology (plus reading figures)."""
    project = project_from_config(cfg, base_dir)
    return build_topology(project, read_inventory(project))

