"""Facts x rules -> findings. Pure: no IO, no clock.

Every rule of the registry runs on the host's facts; then the symptom findings
(queue-dns-failure) are linked to the cause findings on the same host that explain them,
through the table derived from what each cause rule declares (``explains``), and each finding
with a fix carries whether that fix interrupts mail flow (the fix's own declaration). Rules
never call each other: the linking happens here, after all of them ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.fixes.registry import FIXES_BY_ID
from agent.model.facts import HostFacts
from agent.model.finding_data import QueueSymptom, RemoteDomain, SymptomScope
from agent.model.findings import Finding
from agent.rules.registry import RULES, Rule


@dataclass(frozen=True, slots=True)
class Explanation:
    """A cause rule that can explain a symptom of some scope. With ``same_domain`` the cause
    finding's ``domain`` must be one of the symptom's domains."""

    cause_rule: str
    same_domain: bool = False


def explanations(rules: Iterable[Rule]) -> Mapping[tuple[str, SymptomScope], tuple[Explanation, ...]]:
    """(symptom rule, scope) -> the causes that explain it, in registry order: derived from
    what each cause rule declares in its metadata (``explains``)."""
    table: dict[tuple[str, SymptomScope], list[Explanation]] = {}
    for rule in rules:
        for explained in rule.metadata.explains:
            for scope in explained.scopes:
                table.setdefault((explained.symptom, scope), []).append(
                    Explanation(rule.id, explained.same_domain)
                )
    return MappingProxyType({key: tuple(value) for key, value in table.items()})


EXPLAINED_BY = explanations(RULES)


def _domain_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _explains(cause: Finding, rule: Explanation, domains: tuple[str, ...]) -> bool:
    if cause.rule_id != rule.cause_rule:
        return False
    if not rule.same_domain:
        return True
    # A same-domain cause's data is about one remote domain (RuleMetadata checks it); a finding
    # built by hand without data explains nothing.
    return isinstance(cause.data, RemoteDomain) and _domain_name(cause.data.domain) in domains


def link(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The same findings, symptoms carrying ``explained_by`` (cause ids in finding order)."""
    out = []
    for found in findings:
        symptom = found.data
        if not isinstance(symptom, QueueSymptom):
            out.append(found)
            continue
        rules = EXPLAINED_BY.get((found.rule_id, symptom.scope))
        if not rules:
            out.append(found)
            continue
        domains = tuple(_domain_name(d) for d in symptom.domains) if any(r.same_domain for r in rules) else ()
        causes: list[str] = []
        for rule in rules:
            causes.extend(
                other.id
                for other in findings
                if other.host == found.host and other is not found and _explains(other, rule, domains)
            )
        out.append(dataclasses.replace(found, explained_by=tuple(dict.fromkeys(causes))))
    return tuple(out)


def evaluate(facts: HostFacts, rules: Iterable[Rule] = RULES) -> tuple[Finding, ...]:
    """Every finding for one host, in a stable order: rule order of the registry, then each
    rule's own order (rules iterate facts in collection order)."""
    findings: list[Finding] = []
    for rule in rules:
        findings.extend(rule.evaluate(facts))
    return link(tuple(_with_fix(f) for f in findings))


def _with_fix(finding: Finding) -> Finding:
    if finding.fix_id is None:
        return finding
    return dataclasses.replace(finding, fix_disrupts_mail_flow=FIXES_BY_ID[finding.fix_id].disrupts_mail_flow)


@dataclass(frozen=True, slots=True)
class HostEvaluation:
    host: str
    findings: tuple[Finding, ...]


def evaluate_fleet(hosts: Iterable[HostFacts], rules: Iterable[Rule] = RULES) -> tuple[HostEvaluation, ...]:
    """Findings per host, in the order the hosts were given."""
    chosen = tuple(rules)
    return tuple(HostEvaluation(facts.host, evaluate(facts, chosen)) for facts in hosts)
