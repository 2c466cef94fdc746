"""Facts x rules -> findings. Pure: no IO, no clock.

Every rule of the registry runs on the host's facts; then the symptom findings
(queue-dns-failure) are linked to the cause findings on the same host that explain them,
through the declared mapping below. Rules never call each other: the linking happens here,
after all of them ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.model.facts import HostFacts
from agent.model.findings import Finding
from agent.rules import queue_dns_failure as symptom
from agent.rules.registry import RULES, Rule


@dataclass(frozen=True, slots=True)
class Explanation:
    """A cause rule that can explain a symptom of some scope. With ``same_domain`` the cause
    finding's ``domain`` must be one of the symptom's domains."""

    cause_rule: str
    same_domain: bool = False


_GLOBAL_EXTERNAL = (
    Explanation("transport-external-dns-unresolvable"),
    Explanation("transport-no-dns-configured"),
    # With registration off, transport fails with ErrorRetry everywhere (seed 000, KB3007623).
    Explanation("nic-dns-registration-disabled"),
    Explanation("dns-server-unreachable"),
)

# (symptom rule, scope) -> the causes that explain it.
EXPLAINED_BY: Mapping[tuple[str, str], tuple[Explanation, ...]] = MappingProxyType(
    {
        (symptom.METADATA.id, symptom.SCOPE_INTERNAL): (
            Explanation("nic-dns-registration-disabled"),
            Explanation("nic-external-dns-server"),
            Explanation("transport-internal-dns-misconfigured"),
            Explanation("transport-no-dns-configured"),
            Explanation("dns-server-unreachable"),
        ),
        (symptom.METADATA.id, symptom.SCOPE_ALL_EXTERNAL): (
            *_GLOBAL_EXTERNAL,
            Explanation("remote-domain-aaaa-broken", same_domain=True),
            Explanation("remote-domain-no-mail-dns", same_domain=True),
            Explanation("dns-fault-tolerance"),
        ),
        (symptom.METADATA.id, symptom.SCOPE_DOMAIN): (
            Explanation("remote-domain-aaaa-broken", same_domain=True),
            Explanation("remote-domain-no-mail-dns", same_domain=True),
            *_GLOBAL_EXTERNAL,
            Explanation("dns-fault-tolerance"),
        ),
    }
)


def _text_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return tuple(str(v).strip().lower().rstrip(".") for v in value)
    return ()


def _explains(cause: Finding, rule: Explanation, domains: tuple[str, ...]) -> bool:
    if cause.rule_id != rule.cause_rule:
        return False
    if not rule.same_domain:
        return True
    try:
        domain = str(cause.datum("domain")).strip().lower().rstrip(".")
    except KeyError:
        return False
    return domain in domains


def link(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The same findings, symptoms carrying ``explained_by`` (cause ids in finding order)."""
    out = []
    for found in findings:
        try:
            scope = str(found.datum("scope"))
        except KeyError:
            out.append(found)
            continue
        rules = EXPLAINED_BY.get((found.rule_id, scope))
        if not rules:
            out.append(found)
            continue
        domains = _text_tuple(found.datum("domains")) if any(r.same_domain for r in rules) else ()
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
    return link(tuple(findings))


@dataclass(frozen=True, slots=True)
class HostEvaluation:
    host: str
    findings: tuple[Finding, ...]


def evaluate_fleet(hosts: Iterable[HostFacts], rules: Iterable[Rule] = RULES) -> tuple[HostEvaluation, ...]:
    """Findings per host, in the order the hosts were given."""
    chosen = tuple(rules)
    return tuple(HostEvaluation(facts.host, evaluate(facts, chosen)) for facts in hosts)
