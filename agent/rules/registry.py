"""The rule catalogue: an explicit tuple of rule modules, validated when loaded.

No registration by import side effect and no globbing: adding a rule means adding its module
here. Loading refuses a rule whose id, module name and metadata disagree, whose fix id is
unknown (checked by the fix registry, agent/fixes/registry.py), whose ``explains`` names no
symptom rule, or whose ``evaluate`` is missing; and a rule whose data class
(``METADATA.data``) is not the one plan.json decodes its findings' data with
(agent/model/finding_data.py ``FINDING_DATA``), or a data class no rule declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from agent.model.facts import HostFacts
from agent.model.finding_data import DATA_BY_RULE, FindingData
from agent.model.findings import Finding
from agent.rules import (
    dns_client_cache_negative,
    dns_fault_tolerance,
    dns_server_intermittent,
    dns_server_unreachable,
    edge_transport_config_malformed,
    host_firewall_blocks_dns,
    nic_dns_registration_disabled,
    nic_external_dns_server,
    queue_dns_failure,
    remote_domain_aaaa_broken,
    remote_domain_no_mail_dns,
    server_a_record_wrong_nic,
    transport_external_dns_unresolvable,
    transport_internal_dns_misconfigured,
    transport_no_dns_configured,
)
from agent.rules.metadata import MetadataError, RuleKind, RuleMetadata

# Order matters only for output: symptoms first, then causes, then advisories.
RULE_MODULES: tuple[Any, ...] = (
    queue_dns_failure,
    nic_dns_registration_disabled,
    server_a_record_wrong_nic,
    nic_external_dns_server,
    host_firewall_blocks_dns,
    transport_external_dns_unresolvable,
    transport_internal_dns_misconfigured,
    transport_no_dns_configured,
    remote_domain_aaaa_broken,
    dns_client_cache_negative,
    dns_fault_tolerance,
    remote_domain_no_mail_dns,
    dns_server_unreachable,
    dns_server_intermittent,
    edge_transport_config_malformed,
)

RuleFunction = Callable[[HostFacts], "tuple[Finding, ...]"]


@dataclass(frozen=True, slots=True)
class Rule:
    metadata: RuleMetadata
    evaluate: RuleFunction
    module: str

    @property
    def id(self) -> str:
        return self.metadata.id


def load_rule(module: Any) -> Rule:
    """A validated Rule from a rule module (anything with ``__name__``, ``METADATA`` and
    ``evaluate``). Raises MetadataError naming the module and the problem."""
    name = str(getattr(module, "__name__", "<unnamed>"))
    short = name.rsplit(".", 1)[-1]
    meta = getattr(module, "METADATA", None)
    if not isinstance(meta, RuleMetadata):
        raise MetadataError(f"rule module {name}: METADATA is missing or not a RuleMetadata")
    if meta.id.replace("-", "_") != short:
        raise MetadataError(
            f"rule module {name}: id {meta.id!r} does not match the module name {short!r} "
            f"(expected module {meta.id.replace('-', '_')!r})"
        )
    function = getattr(module, "evaluate", None)
    if not callable(function):
        raise MetadataError(f"rule module {name}: evaluate(facts) is missing")
    return Rule(metadata=meta, evaluate=function, module=name)


def load_rules(
    modules: Iterable[Any], data: Mapping[str, type[FindingData]] = DATA_BY_RULE
) -> tuple[Rule, ...]:
    """The validated rules of ``modules``, checked against each other and against ``data``, the
    data class of each rule id. Raises MetadataError naming the first problem."""
    rules = tuple(load_rule(module) for module in modules)
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise MetadataError(f"rule id {rule.id!r} is registered twice")
        seen.add(rule.id)
    symptoms = {rule.id for rule in rules if rule.metadata.kind is RuleKind.SYMPTOM}
    for rule in rules:
        for explained in rule.metadata.explains:
            if explained.symptom not in symptoms:
                raise MetadataError(
                    f"rule {rule.id!r} explains {explained.symptom!r}, which is no symptom rule"
                )
        listed = data.get(rule.id)
        if listed is not rule.metadata.data:
            shown = "none" if listed is None else listed.__name__
            raise MetadataError(
                f"rule {rule.id!r} declares data {rule.metadata.data.__name__}, but the data class "
                f"listed for it is {shown}"
            )
    for rule_id, cls in data.items():
        if rule_id not in seen:
            raise MetadataError(f"data class {cls.__name__} names rule {rule_id!r}, which is not loaded")
    return rules


RULES: tuple[Rule, ...] = load_rules(RULE_MODULES)
RULES_BY_ID: Mapping[str, Rule] = MappingProxyType({rule.id: rule for rule in RULES})


def rule(rule_id: str) -> Rule:
    """The rule with this id; KeyError for an unknown id."""
    return RULES_BY_ID[rule_id]
