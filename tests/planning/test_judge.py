"""A plan judged as a whole (issue 9, class 5): the NIC fix that drops the public server of a
NIC whose other server is an internal DNS server without forwarders would leave transport with
no server that resolves internet names. The probes already say so; the plan must either add
the change that keeps internet mail working, or leave the NIC step out and say why."""

from __future__ import annotations

import dataclasses

import pytest

from agent.evaluate import evaluate
from agent.model.facts import HostFacts
from agent.model.plan import (
    EXTERNAL_DNS_VARIABLE,
    AdvisoryKind,
    Blocker,
    HostVars,
    Plan,
    Resolution,
    plan_from_json,
)
from agent.model.probe import Outcome
from agent.planning import build_plan
from agent.planning.judge import HostProposal, judge, predict
from agent.planning.outstanding import addressed
from support.facts_builders import (
    ORGANIZATION,
    connector,
    exchange,
    host,
    internal_queue,
    lookup,
    mapi_nic,
    replication_nic,
    server_probes,
    transport,
)

NO_FORWARDERS = "10.0.0.11"  # holds the AD zone, resolves no internet name
PUBLIC = "8.8.8.8"


def half_public(name: str = "ex01.contoso.local", short: str = "EX01", forwarders: bool = False) -> HostFacts:
    """The MAPI NIC lists the internal server first and the public one second: internal next
    hops fail with NonExistentDomain, internet mail works through the public server."""
    return host(
        name=name,
        exchange_facts=exchange(name=short, fqdn=name),
        nics=(mapi_nic(ipv4_dns_servers=(NO_FORWARDERS, PUBLIC)), replication_nic()),
        queues=(internal_queue(f"{short}\\7"),),
        connectors=(dataclasses.replace(connector(), source_transport_servers=("EX01", "EX02")),),
        probes=server_probes(NO_FORWARDERS, public=Outcome.ANSWER if forwarders else Outcome.SERVFAIL)
        + server_probes(PUBLIC, srv=Outcome.NXDOMAIN, internal=Outcome.NXDOMAIN),
    )


NO_VARIABLES = HostVars()


def plan_of(*fleet: HostFacts, variables: HostVars = NO_VARIABLES) -> Plan:
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {f.host: variables for f in fleet})


def test_the_nic_fix_alone_would_break_internet_mail() -> None:
    facts = half_public()
    [nic_finding] = [f for f in evaluate(facts) if f.rule_id == "nic-external-dns-server"]
    assert not [f for f in evaluate(facts) if f.rule_id == "transport-external-dns-unresolvable"]
    from agent.fixes import nic_dns_servers

    (step,) = nic_dns_servers.plan(nic_finding, facts, HostVars()).drafts
    after = predict(facts, (step,))
    assert after.mapi is not None and after.mapi.dns_servers == (NO_FORWARDERS,)
    [broken] = [f for f in evaluate(after) if f.rule_id == "transport-external-dns-unresolvable"]
    assert f"{NO_FORWARDERS}: SERVFAIL" in broken.summary


def test_the_plan_keeps_internet_mail_working_with_the_inventory_s_servers() -> None:
    plan = plan_of(half_public(), variables=HostVars((PUBLIC,)))
    (hp,) = plan.hosts
    kinds = [a.kind for a in hp.actions]
    assert kinds == ["set-nic-dns-servers", "set-transport-external-dns", "restart-transport"]
    external = hp.actions[1]
    assert dict(external.call.parameters)["ExternalDNSServers"] == (PUBLIC,)
    assert dict(external.call.parameters)["ExternalDNSAdapterEnabled"] is False
    # The step is there for the NIC finding (and the fault it prevents).
    assert hp.actions[0].finding_ids[0] in external.finding_ids
    # The connector switch is the organisation's.
    (org,) = plan.organizations
    assert [(a.kind, dict(a.call.parameters)["Identity"]) for a in org.actions] == [
        ("use-external-dns-on-connector", "Internet")
    ]
    (consequence,) = hp.consequences
    assert consequence.resolution is Resolution.PREVENTED
    assert consequence.finding.rule_id == "transport-external-dns-unresolvable"
    assert consequence.caused_by == (hp.actions[0].description,)
    assert external.description in consequence.prevented_by
    assert hp.outstanding == () and not [a for a in hp.advisories if a.kind is AdvisoryKind.WOULD_BREAK]
    # The judged plan, predicted as a whole, creates nothing new.
    steps = [*hp.actions, *org.actions]
    facts = half_public()
    before = {f.id for f in evaluate(facts)}
    assert {f.id for f in evaluate(predict(facts, steps))} <= before


def test_without_the_inventory_s_servers_the_nic_step_is_refused_and_the_plan_says_why() -> None:
    plan = plan_of(half_public())
    (hp,) = plan.hosts
    assert hp.actions == () and plan.organizations == ()
    (advice,) = [a for a in hp.advisories if a.kind is AdvisoryKind.WOULD_BREAK]
    assert advice.fix_id == "set-nic-dns-servers" and advice.variable == EXTERNAL_DNS_VARIABLE
    assert "exfix leaves out 'Set the DNS servers of the MAPI NIC" in advice.message
    assert f"{NO_FORWARDERS}: SERVFAIL" in advice.message  # the probe that predicts it
    assert f"Set {EXTERNAL_DNS_VARIABLE} for host ex01.contoso.local" in advice.message
    (consequence,) = hp.consequences
    assert consequence.resolution is Resolution.REFUSED and consequence.prevented_by == ()
    by_rule = {o.rule_id: o for o in hp.outstanding}
    assert by_rule["nic-external-dns-server"].blocker is Blocker.REFUSED
    assert by_rule["nic-external-dns-server"].variable == EXTERNAL_DNS_VARIABLE
    assert by_rule["queue-dns-failure"].blocker is Blocker.CAUSE
    assert "nic-external-dns-server" in by_rule["queue-dns-failure"].message


def test_a_forwarding_internal_server_lets_the_nic_fix_through_unchanged() -> None:
    plan = plan_of(half_public(forwarders=True))
    (hp,) = plan.hosts
    assert [a.kind for a in hp.actions] == ["set-nic-dns-servers", "restart-transport"]
    assert hp.consequences == () and hp.outstanding == ()


def test_a_shared_switch_that_would_break_another_server_gets_that_server_s_change_too() -> None:
    # EX01 needs the connector switch to keep internet mail; EX02 sends through the same
    # connector and has External* settings nobody uses yet, whose server resolves nothing. The
    # switch puts them on EX02's path: the plan gives EX02 the inventory's servers as well.
    ex01 = half_public()
    ex02 = host(
        name="ex02.contoso.local",
        exchange_facts=exchange(name="EX02", fqdn="ex02.contoso.local"),
        transport_facts=transport(external=lookup(adapter=False, servers=("192.0.2.1",))),
        connectors=ex01.send_connectors,
        probes=server_probes("10.0.0.10") + server_probes("192.0.2.1", srv=Outcome.SERVFAIL,
                                                          public=Outcome.SERVFAIL),
    )  # fmt: skip
    ex02 = dataclasses.replace(ex02, org=ex01.org)
    assert evaluate(ex02) == ()
    plan = plan_of(ex01, ex02, variables=HostVars((PUBLIC,)))
    second = plan.host("ex02.contoso.local")
    assert [a.kind for a in second.actions] == ["set-transport-external-dns", "restart-transport"]
    (consequence,) = second.consequences
    assert consequence.resolution is Resolution.PREVENTED
    assert consequence.caused_by == ("Make send connector 'Internet' use transport's external DNS servers",)
    (org,) = plan.organizations
    assert [a.kind for a in org.actions] == ["use-external-dns-on-connector"]
    assert set(org.servers) == {"ex01.contoso.local"}


def test_without_servers_the_shared_switch_is_never_proposed() -> None:
    plan = plan_of(half_public(), half_public("ex02.contoso.local", "EX02"))
    assert all(not h.actions for h in plan.hosts) and plan.organizations == ()
    assert all(o.blocker in (Blocker.REFUSED, Blocker.CAUSE) for h in plan.hosts for o in h.outstanding)
    assert ORGANIZATION  # one organisation: the builders share it


def test_judging_is_pure_and_repeatable() -> None:
    facts = half_public()
    proposal = HostProposal(facts, HostVars((PUBLIC,)), ())
    assert judge([proposal], []).host_drafts == ((),)
    assert plan_of(half_public()).digest == plan_of(half_public()).digest


def test_plan_3_round_trips_its_consequences_and_outstanding_findings() -> None:
    for variables in (HostVars(), HostVars((PUBLIC,))):
        plan = plan_of(half_public(), variables=variables)
        again = plan_from_json(plan.to_json())
        assert again == plan and again.schema == "exfix.plan/4"
    assert addressed(plan.units) >= {a for a in plan.hosts[0].actions[0].finding_ids}


def test_plan_json_of_every_version_validates_against_the_shipped_schema() -> None:
    import json
    from pathlib import Path

    jsonschema = pytest.importorskip("jsonschema")
    schemas = Path(__file__).resolve().parents[2] / "agent" / "schemas"
    validator = jsonschema.Draft202012Validator(json.loads((schemas / "plan.schema.json").read_text()))
    for variables in (NO_VARIABLES, HostVars((PUBLIC,))):
        plan = plan_of(half_public(), variables=variables)
        validator.validate(plan.to_dict())
        older = dataclasses.replace(plan, schema="exfix.plan/2")
        validator.validate(older.to_dict())
        assert "outstanding" not in older.to_dict()["hosts"][0]
        stray = plan.to_dict()
        del stray["hosts"][0]["outstanding"]
        assert list(validator.iter_errors(stray)), "a /3 unit without outstanding must not validate"
    v1 = Path(__file__).resolve().parents[1] / "data" / "plan-v1-mixed-fleet.json"
    validator.validate(json.loads(v1.read_text(encoding="utf-8")))


def test_a_fleet_of_such_servers_is_prevented_in_one_round_each() -> None:
    # More servers than prevention rounds: each gets its own transport change, the organisation
    # one connector switch, and nothing is refused.
    names = [(f"ex{n:02d}.contoso.local", f"EX{n:02d}") for n in range(1, 13)]
    internet = dataclasses.replace(connector(), source_transport_servers=tuple(s for _, s in names))
    org = dataclasses.replace(half_public().org, send_connectors=(internet,))
    fleet = [dataclasses.replace(half_public(name, short), org=org) for name, short in names]
    plan = plan_of(*fleet, variables=HostVars((PUBLIC,)))
    for hp in plan.hosts:
        assert [a.kind for a in hp.actions] == ["set-nic-dns-servers", "set-transport-external-dns",
                                                "restart-transport"], hp.host  # fmt: skip
        assert [c.resolution for c in hp.consequences] == [Resolution.PREVENTED]
    (org,) = plan.organizations
    assert [a.kind for a in org.actions] == ["use-external-dns-on-connector"]
