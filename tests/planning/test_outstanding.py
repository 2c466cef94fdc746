"""What stands in the way of each finding a plan leaves (issue 9, class 6), from plain facts."""

from __future__ import annotations

from agent.evaluate import evaluate
from agent.model.facts import EdgeTransportConfigFacts, HostFacts
from agent.model.plan import EXTERNAL_DNS_VARIABLE, Blocker, HostVars, Plan
from agent.model.probe import Outcome
from agent.planning import build_plan
from support.facts_builders import (
    EDGE_CONFIG,
    INTERNAL_DNS,
    SERVFAIL_ERROR,
    host,
    mapi_nic,
    queue,
    server_probes,
    unreachable,
)


def plan_of(facts: HostFacts, variables: HostVars | None = None) -> Plan:
    return build_plan([facts], {facts.host: evaluate(facts)}, {facts.host: variables or HostVars()})


def blockers(plan: Plan) -> dict[str, tuple[Blocker, str | None]]:
    return {o.rule_id: (o.blocker, o.variable) for u in plan.units for o in u.outstanding}


def internet_broken() -> HostFacts:
    return host(
        nics=(mapi_nic(ipv4_dns_servers=("10.0.0.11",)),),
        queues=(queue("EX01\\1", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
                queue("EX01\\2", next_hop="tailspintoys.com", last_error=SERVFAIL_ERROR)),
        probes=server_probes("10.0.0.11", public=Outcome.SERVFAIL),
    )  # fmt: skip


def test_a_missing_variable_is_named_and_the_symptom_waits_for_its_cause() -> None:
    plan = plan_of(internet_broken())
    assert plan.actions == ()
    assert blockers(plan) == {
        "transport-external-dns-unresolvable": (Blocker.VARIABLE, EXTERNAL_DNS_VARIABLE),
        "queue-dns-failure": (Blocker.CAUSE, None),
    }
    (symptom,) = [o for o in plan.hosts[0].outstanding if o.blocker is Blocker.CAUSE]
    assert "transport-external-dns-unresolvable" in symptom.message


def test_findings_a_plan_addresses_are_not_outstanding() -> None:
    plan = plan_of(internet_broken(), HostVars(("8.8.8.8",)))
    assert plan.actions and blockers(plan) == {}


def test_a_manual_step_and_advice_say_who_acts() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.99")),),
        probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.99"),
        edge=EdgeTransportConfigFacts(EDGE_CONFIG, "Normal", True),
    )
    plan = plan_of(facts)
    found = {o.rule_id: o for o in plan.hosts[0].outstanding}
    assert found["dns-fault-tolerance"].blocker is Blocker.MANUAL
    assert f"hosts/{plan.hosts[0].directory}/remediate.ps1" in found["dns-fault-tolerance"].message
    assert found["dns-server-unreachable"].blocker is Blocker.ADVICE
    assert "10.0.0.99" in found["dns-server-unreachable"].message
    assert found["dns-server-unreachable"].message.endswith("exfix changes nothing for this finding.")


def test_a_healthy_host_has_nothing_outstanding() -> None:
    plan = plan_of(host())
    assert plan.hosts[0].findings == () and plan.hosts[0].outstanding == ()
