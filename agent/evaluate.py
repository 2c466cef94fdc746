"""Facts x rules -> findings. Pure: no IO, no clock.

Every rule of the registry runs on the host's facts, except a rule that reads a fact area that
could not be collected on that host (``RuleMetadata.reads``, ``facts.status.issues``): that rule
is not run but reported as not judged, with the area's reason (:func:`not_judged`), so that an
area that failed never reads as an area that is fine; then the symptom findings
(queue-dns-failure) are linked to the cause findings on the same host that explain them,
through the table derived from what each cause rule declares (``explains``), and each finding
with a fix carries whether that fix interrupts mail flow (the fix's own declaration). Rules
never call each other: the linking happens here, after all of them ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from agent.fixes.registry import FIXES_BY_ID
from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import FindingData, QueueSymptom, RemoteDomain, SymptomScope, merged
from agent.model.findings import Finding, Level, NotJudged
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


def why_not_judged(facts: HostFacts, rule: Rule) -> NotJudged | None:
    """Why ``rule`` cannot be judged on this host: the first area it reads that failed (or an
    area that one is read from), with that area's reason; None when every area it reads was
    collected."""
    failed: list[CollectionArea] = []
    reasons: list[str] = []
    for area in rule.metadata.reads:
        issue = facts.status.issue(area)
        if issue is None:
            continue
        failed.append(area)
        via = "" if issue.area is area else f", which needs {issue.area.value} ({issue.area.description})"
        reasons.append(
            f"it reads {area.value} ({area.description}){via}, not collected on this host: {issue.reason}"
        )
    if not failed:
        return None
    return NotJudged(
        rule_id=rule.id,
        host=facts.host,
        title=rule.metadata.title,
        areas=tuple(area.value for area in failed),
        reason="; ".join(dict.fromkeys(reasons)),
    )


def not_judged(facts: HostFacts, rules: Iterable[Rule] = RULES) -> tuple[NotJudged, ...]:
    """The rules (in registry order) that are not run on this host, and why."""
    return tuple(j for j in (why_not_judged(facts, rule) for rule in rules) if j is not None)


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the rules concluded about one host: the findings, and the rules that could not be
    judged there."""

    findings: tuple[Finding, ...]
    not_judged: tuple[NotJudged, ...]


def judge(facts: HostFacts, rules: Iterable[Rule] = RULES) -> Judgement:
    """Every finding for one host, in a stable order (rule order of the registry, then each
    rule's own order: rules iterate facts in collection order), and the rules not judged."""
    findings: list[Finding] = []
    skipped: list[NotJudged] = []
    for rule in rules:
        why = why_not_judged(facts, rule)
        if why is not None:
            skipped.append(why)
            continue
        findings.extend(rule.evaluate(facts))
    return Judgement(link(tuple(_with_fix(f) for f in findings)), tuple(skipped))


def evaluate(facts: HostFacts, rules: Iterable[Rule] = RULES) -> tuple[Finding, ...]:
    """Every finding for one host (:func:`judge`'s findings): the rules that cannot be judged
    there are not run."""
    return judge(facts, rules).findings


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


# --- the organisation -----------------------------------------------------------------------


def organization_of(facts: HostFacts) -> str:
    """The name an organisation finding carries as its ``host``: the Exchange organisation
    (from the server's DistinguishedName), or the host itself where the server did not show
    one (then nothing is shared with other servers)."""
    return facts.org.name or facts.host


def org_finding_id(finding: Finding, organization: str) -> str:
    """The id of the organisation finding a host's finding of an organisation rule becomes."""
    return f"{finding.rule_id}|{organization}|{finding.subject}"


@dataclass(frozen=True, slots=True)
class OrgEvaluation:
    """One organisation's findings. ``servers``: its scanned servers (inventory names, in
    inventory order); ``collected_from``: the server its shared facts were read from."""

    name: str
    servers: tuple[str, ...]
    collected_from: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Organised:
    hosts: tuple[HostEvaluation, ...]  # each host's own findings, organisation ones taken out
    organizations: tuple[OrgEvaluation, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """What organise needs of a scanned host: its name, its organisation (organization_of)
    and the server its organisation's facts were read from. A fleet scan keeps this and not the
    host's facts, so that memory stays flat with the fleet's size."""

    host: str
    organization: str
    collected_from: str

    @classmethod
    def of(cls, facts: HostFacts) -> Member:
        return cls(facts.host, organization_of(facts), facts.org.collected_from)


def organise(
    hosts: Sequence[tuple[HostFacts | Member, tuple[Finding, ...]]], rules: Iterable[Rule] = RULES
) -> Organised:
    """Lift the findings of organisation rules (RuleMetadata.level ORGANIZATION) out of the
    hosts: the same subject (a remote domain, say) on several servers of one organisation is one
    organisation finding naming those servers, with the evidence of each (identical items once)
    and the planner's data merged (lists joined in server order: SourceTransportServers, the
    queues; single values from the first server). Symptoms that named a host's cause now name
    the organisation finding. Pure."""
    chosen = tuple(rules)
    order = [r.id for r in chosen]
    org_rules = {r.id for r in chosen if r.metadata.level is Level.ORGANIZATION}
    groups: dict[tuple[str, str, str], list[tuple[str, Finding]]] = {}
    servers: dict[str, list[str]] = {}
    collected: dict[str, str] = {}
    renamed: dict[str, str] = {}
    kept: list[HostEvaluation] = []
    for which, findings in hosts:
        member = which if isinstance(which, Member) else Member.of(which)
        org = member.organization
        servers.setdefault(org, []).append(member.host)
        collected.setdefault(org, member.collected_from)
        own = []
        for finding in findings:
            if finding.rule_id not in org_rules:
                own.append(finding)
                continue
            groups.setdefault((org, finding.rule_id, finding.subject), []).append((member.host, finding))
            renamed[finding.id] = org_finding_id(finding, org)
        kept.append(HostEvaluation(member.host, tuple(own)))
    relinked = tuple(
        HostEvaluation(
            h.host,
            tuple(
                _relinked(f, renamed) if any(i in renamed for i in f.explained_by) else f
                for f in h.findings
            ),
        )
        for h in kept
    )
    by_org: dict[str, list[Finding]] = {}
    for (org, _, _), members in groups.items():
        by_org.setdefault(org, []).append(_merged(org, members))
    rank = {rule_id: i for i, rule_id in enumerate(order)}
    orgs = tuple(
        OrgEvaluation(
            org,
            tuple(servers[org]),
            collected[org],
            tuple(sorted(by_org.get(org, ()), key=lambda f: (rank.get(f.rule_id, len(rank)), f.subject))),
        )
        for org in servers
    )
    return Organised(relinked, orgs)


def _relinked(finding: Finding, renamed: Mapping[str, str]) -> Finding:
    causes = tuple(dict.fromkeys(renamed.get(i, i) for i in finding.explained_by))
    return dataclasses.replace(finding, explained_by=causes)


def _merged(org: str, members: Sequence[tuple[str, Finding]]) -> Finding:
    first = members[0][1]
    names = tuple(host for host, _ in members)
    evidence = tuple(dict.fromkeys(item for _, f in members for item in f.evidence))
    summary = first.summary if len(members) == 1 else f"{first.summary} (on {len(members)} servers)"
    return dataclasses.replace(
        first,
        host=org,
        summary=summary,
        evidence=evidence,
        data=_merged_data([f.data for _, f in members]),
        explained_by=(),
        level=Level.ORGANIZATION,
        servers=names,
    )


def _merged_data(datas: Sequence[FindingData | None]) -> FindingData | None:
    """Lists joined in order without repeats; a single value from the first server."""
    present = [data for data in datas if data is not None]
    return merged(present) if present else None
