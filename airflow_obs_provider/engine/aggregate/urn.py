"""Resource identity (design §4): which OpenObserve columns name a resource, and its URN.

URNs are lower-case and stable per tenant: ``urn:svc:<service>``, ``urn:k8s:pod:<ns>/<pod>``,
``urn:host:<host>``, and for peers inferred from spans ``urn:db:<system>:<name>``,
``urn:queue:<system>:<destination>``, ``urn:ext:<host>``. ``dim_resource.type`` is the
URN's kind: ``svc``, ``pod``, ``host``, ``db``, ``queue`` or ``ext``.

Metric points and log records are mapped to a resource by the first rule whose columns
are all present and non-empty (default order: service, pod, host); a record no rule
matches belongs to the fallback ``urn:svc:unknown_service`` (OpenTelemetry's name for a
service that did not set one). The mapping is configurable per tenant
(``tenants[].urn_mapping`` in ``include/etl.yaml``)::

    urn_mapping:
      service_column: service_name          # spans: caller/callee service
      resources:                            # metrics/logs: first complete rule wins
        - {type: svc, urn: "urn:svc:{service_name}"}
        - {type: pod, urn: "urn:k8s:pod:{k8s_namespace_name}/{k8s_pod_name}"}
        - {type: host, urn: "urn:host:{host_name}"}
      label_columns: [service_version, deployment_environment]   # extra labels kept
      fallback: "urn:svc:unknown_service"

Every URN is masked like free text (:func:`masking.mask_urn`): a secret in a column value becomes
``<secret>``, so two resources that differ only by a secret are one resource.

Labels stored in ``dim_resource.labels`` are the rule's columns plus ``label_columns``
that hold exactly one value for the resource in the window (a service's pods differ, so a
service carries no pod name), masked with :func:`masking.mask_labels` before storing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_obs_provider.engine.aggregate.duck import MASK_URN_SQL, quote_ident, sql_literal
from airflow_obs_provider.engine.config import ConfigError
from airflow_obs_provider.engine.masking import mask_urn

RESOURCE_TYPES = ("svc", "pod", "host", "db", "queue", "ext")

DEFAULT_LABEL_COLUMNS = (
    "service_namespace",
    "service_version",
    "deployment_environment",
    "k8s_namespace_name",
    "k8s_pod_name",
    "k8s_deployment_name",
    "k8s_node_name",
    "host_name",
    "cloud_region",
)


@dataclass(frozen=True)
class UrnRule:
    """``template`` holds ``{column}`` fields; the rule applies when every field has a value."""

    type: str
    template: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)

    def sql(self) -> str:
        """DuckDB expression building the URN from the row's columns: lower-cased, secrets masked
        (a service named ``svc password=x`` must not put the password into ``dim_resource``)."""
        parts = []
        for literal, name, _, _ in string.Formatter().parse(self.template):
            if literal:
                parts.append(sql_literal(literal))
            if name:
                parts.append(quote_ident(name))
        return f"{MASK_URN_SQL}(concat({', '.join(parts)}))"

    def condition_sql(self) -> str:
        return " AND ".join(f"nullif({quote_ident(c)}, '') IS NOT NULL" for c in self.columns) or "true"


DEFAULT_RULES = (
    UrnRule("svc", "urn:svc:{service_name}"),
    UrnRule("pod", "urn:k8s:pod:{k8s_namespace_name}/{k8s_pod_name}"),
    UrnRule("host", "urn:host:{host_name}"),
)


@dataclass(frozen=True)
class UrnMapping:
    service_column: str = "service_name"
    rules: tuple[UrnRule, ...] = DEFAULT_RULES
    label_columns: tuple[str, ...] = DEFAULT_LABEL_COLUMNS
    fallback: UrnRule = field(default_factory=lambda: UrnRule("svc", "urn:svc:unknown_service"))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> UrnMapping:
        """Build the mapping from ``tenants[].urn_mapping``; unknown keys and bad rules are errors."""
        raw = dict(raw or {})
        unknown = set(raw) - {"service_column", "resources", "label_columns", "fallback"}
        if unknown:
            raise ConfigError(f"urn_mapping: unknown keys {sorted(unknown)}")
        rules: tuple[UrnRule, ...] = DEFAULT_RULES
        if "resources" in raw:
            if not isinstance(raw["resources"], list) or not raw["resources"]:
                raise ConfigError("urn_mapping.resources must be a non-empty list of {type, urn}")
            rules = tuple(_rule(r, f"urn_mapping.resources[{i}]") for i, r in enumerate(raw["resources"]))
        labels = raw.get("label_columns", DEFAULT_LABEL_COLUMNS)
        if not isinstance(labels, list | tuple) or not all(isinstance(c, str) for c in labels):
            raise ConfigError("urn_mapping.label_columns must be a list of column names")
        fallback_text = raw.get("fallback", "urn:svc:unknown_service")
        fallback = UrnRule(_type_of(str(fallback_text), "urn_mapping.fallback"), str(fallback_text))
        if fallback.columns:
            raise ConfigError("urn_mapping.fallback must be a fixed URN without {column} fields")
        service_column = raw.get("service_column", "service_name")
        if not isinstance(service_column, str) or not service_column:
            raise ConfigError("urn_mapping.service_column must be a column name")
        return cls(service_column=service_column, rules=rules, label_columns=tuple(labels), fallback=fallback)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the resource mapping reads (rule fields, then labels)."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            for c in rule.columns:
                seen[c] = None
        for c in self.label_columns:
            seen[c] = None
        return tuple(seen)

    def urn_sql(self) -> str:
        """DuckDB CASE expression: the resource URN of a row."""
        whens = " ".join(f"WHEN {r.condition_sql()} THEN {r.sql()}" for r in self.rules)
        return f"CASE {whens} ELSE {sql_literal(mask_urn(self.fallback.template))} END"

    def type_sql(self) -> str:
        whens = " ".join(f"WHEN {r.condition_sql()} THEN {sql_literal(r.type)}" for r in self.rules)
        return f"CASE {whens} ELSE {sql_literal(self.fallback.type)} END"


def _type_of(urn_template: str, where: str) -> str:
    parts = urn_template.split(":")
    if len(parts) < 3 or parts[0].lower() != "urn":
        raise ConfigError(f"{where}: {urn_template!r} is not a URN template like 'urn:svc:{{service_name}}'")
    kind = parts[1].lower()
    return "pod" if kind == "k8s" else kind


def _rule(raw: Any, where: str) -> UrnRule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("urn"), str):
        raise ConfigError(f"{where} must be a mapping with an 'urn' template")
    template = raw["urn"]
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}.urn {template!r}: {exc}") from None
    if not fields or any(not f.isidentifier() for f in fields):
        raise ConfigError(f"{where}.urn {template!r} needs at least one {{column}} field naming a column")
    rtype = str(raw.get("type") or _type_of(template, where))
    return UrnRule(rtype, template)
