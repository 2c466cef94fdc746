"""build_plan: order, the single restart, idempotence, the digest and the fingerprints."""

from __future__ import annotations

import dataclasses

import pytest

from agent.evaluate import evaluate
from agent.model.facts import (
    AreaIssue,
    CollectionArea,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    HostFacts,
    XmlSyntaxError,
)
from agent.model.plan import RESTART_KIND, AdvisoryKind, FactArea, FactRef, HostVars, Plan
from agent.model.probe import Outcome
from agent.planning import build_plan, fingerprint_for, host_fingerprint
from agent.planning.build import host_directories
from support.facts_builders import (
    EDGE_CONFIG,
    INTERNAL_DNS,
    SERVFAIL_ERROR,
    broken,
    connector,
    host,
    lookup,
    mapi_nic,
    queue,
    replication_nic,
    server_probes,
    transport,
    unreachable,
)


def plan_for(*fleet: HostFacts, host_vars: dict[str, HostVars] | None = None) -> Plan:
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, host_vars or {})


def test_actions_come_in_order_with_one_restart_after_the_automatic_changes() -> None:
    plan = plan_for(broken())
    (hp,) = plan.hosts
    kinds = [a.kind for a in hp.actions]
    assert kinds == [
        "set-nic-dns-servers",
        "enable-nic-dns-registration",
        "register-dns-client",
        "set-transport-internal-dns-servers",
        RESTART_KIND,
        "backup-edge-config",
        "set-dns-fault-tolerance",
        RESTART_KIND,
    ]
    automatic = [a for a in hp.actions if not a.manual]
    assert [a.disruptive for a in automatic] == [False, False, False, False, True]
    assert sum(a.kind == RESTART_KIND for a in automatic) == 1
    restart = automatic[-1]
    assert restart.call.cmdlet == "Restart-Service" and restart.call.param("Name") == "MSExchangeTransport"
    # The restart addresses every finding whose fix needs it.
    assert set(restart.finding_ids) == {f for a in automatic if a.restart_required for f in a.finding_ids}
    assert all(a.manual for a in hp.actions[5:]) and hp.actions[-1].disruptive
    assert [a.id for a in hp.actions][:2] == ["01-set-nic-dns-servers", "02-enable-nic-dns-registration"]


def test_non_disruptive_fix_alone_gets_no_restart() -> None:
    facts = host(edge=EdgeTransportConfigFacts(EDGE_CONFIG, "Lenient", True))
    assert plan_for(facts).hosts[0].actions == ()


def test_a_healthy_host_has_no_actions_and_rerunning_after_the_fix_is_empty() -> None:
    plan = plan_for(host())
    assert plan.hosts[0].actions == () and plan.hosts[0].advisories == ()
    fixed = host(nics=(mapi_nic(), replication_nic()))
    assert plan_for(fixed).actions == ()


def test_advisory_rules_become_advice_and_symptoms_do_not() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.99")), replication_nic()),
        probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.99"),
    )
    (hp,) = plan_for(facts).hosts
    assert hp.actions == ()
    (advisory,) = hp.advisories
    assert advisory.kind is AdvisoryKind.NO_FIX and advisory.fix_id is None
    assert "10.0.0.99" in advisory.message


def test_identical_actions_for_two_findings_are_merged() -> None:
    # transport-no-dns-configured (the internet connector uses the external settings, which
    # are empty) and transport-external-dns-unresolvable (a partner connector uses the internal
    # settings, whose server cannot resolve internet names) ask for the same Set-TransportService.
    facts = host(
        transport_facts=transport(
            external=lookup(adapter=False), internal=lookup(adapter=False, servers=(INTERNAL_DNS,))
        ),
        connectors=(
            connector("Internet", use_external=True),
            connector("Partner", spaces=("SMTP:partner.example;1",)),
        ),
        queues=(queue("EX01\\4", next_hop="partner.example", last_error=SERVFAIL_ERROR),),
        probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL),
    )
    findings = evaluate(facts)
    rules = {f.rule_id for f in findings}
    assert {"transport-no-dns-configured", "transport-external-dns-unresolvable"} <= rules
    plan = build_plan([facts], {facts.host: findings}, {facts.host: HostVars(("203.0.113.53",))})
    (hp,) = plan.hosts
    external = [a for a in hp.actions if a.kind == "set-transport-external-dns"]
    assert len(external) == 1
    assert len(external[0].finding_ids) == 2
    assert sum(a.kind == RESTART_KIND for a in hp.actions) == 1


# --- digest ---------------------------------------------------------------------------------


def test_digest_is_stable_across_runs() -> None:
    assert plan_for(broken()).digest == plan_for(broken()).digest
    assert len(plan_for(broken()).digest) == 64


def test_digest_changes_when_any_action_changes() -> None:
    base = plan_for(broken())
    assert plan_for(broken(alias="Ethernet1")).digest != base.digest
    (hp,) = base.hosts
    for index, action in enumerate(hp.actions):
        for change in (
            dataclasses.replace(action, description=action.description + "."),
            dataclasses.replace(action, disruptive=not action.disruptive),
            dataclasses.replace(action, rollback=()),
            dataclasses.replace(action, fingerprint="0" * 64),
            dataclasses.replace(action, call=dataclasses.replace(action.call, parameters=())),
        ):
            if change == action:
                continue  # e.g. Register-DnsClient has no parameters and no rollback to drop
            actions = (*hp.actions[:index], change, *hp.actions[index + 1 :])
            changed = dataclasses.replace(base, hosts=(dataclasses.replace(hp, actions=actions),))
            assert changed.compute_digest() != base.digest


def test_digest_covers_advisories_and_is_the_canonical_sha256() -> None:
    import hashlib
    import json

    plan = plan_for(broken())
    content = plan.to_dict()
    del content["digest"]
    for h in content["hosts"]:
        del h["scripts"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    assert hashlib.sha256(canonical).hexdigest() == plan.digest
    with_vars = plan_for(
        host(
            transport_facts=transport(external=lookup(adapter=False)),
            connectors=(connector(use_external=True),),
        ),
    )
    assert with_vars.hosts[0].advisories
    without = dataclasses.replace(with_vars, hosts=(dataclasses.replace(with_vars.hosts[0], advisories=()),))
    assert without.compute_digest() != with_vars.digest


# --- fingerprints ---------------------------------------------------------------------------


def test_fingerprint_changes_with_a_depended_on_fact_and_not_otherwise() -> None:
    facts = broken()
    (hp,) = plan_for(facts).hosts
    registration = next(a for a in hp.actions if a.kind == "enable-nic-dns-registration")
    servers = next(a for a in hp.actions if a.kind == "set-nic-dns-servers")
    assert registration.fingerprint == fingerprint_for(registration.depends_on, facts)

    nic = facts.nics[0]
    registered = dataclasses.replace(
        facts, nics=(dataclasses.replace(nic, register_this_connections_address=True), *facts.nics[1:])
    )
    assert fingerprint_for(registration.depends_on, registered) != registration.fingerprint
    assert fingerprint_for(servers.depends_on, registered) == servers.fingerprint

    other_servers = dataclasses.replace(
        facts, nics=(dataclasses.replace(nic, ipv4_dns_servers=(INTERNAL_DNS,)), *facts.nics[1:])
    )
    assert fingerprint_for(servers.depends_on, other_servers) != servers.fingerprint
    assert fingerprint_for(registration.depends_on, other_servers) == registration.fingerprint

    # Unrelated facts: the replication NIC, the queues, probe timings.
    unrelated = dataclasses.replace(
        facts,
        nics=(nic, dataclasses.replace(facts.nics[1], interface_alias="Renamed")),
        probes=tuple(dataclasses.replace(p, elapsed_ms=12.5) for p in facts.probes),
    )
    for action in hp.actions:
        assert fingerprint_for(action.depends_on, unrelated) == action.fingerprint
    assert host_fingerprint(hp.actions, unrelated) == hp.fingerprint
    assert host_fingerprint(hp.actions, registered) != hp.fingerprint


def test_fingerprint_of_transport_settings_and_connectors() -> None:
    facts = host()
    refs = (FactRef(FactArea.TRANSPORT_EXTERNAL_DNS), FactRef(FactArea.SEND_CONNECTOR, "Internet"))
    before = fingerprint_for(refs, facts)
    assert fingerprint_for(reversed(refs), facts) == before  # order does not matter
    org = dataclasses.replace(facts.org, send_connectors=(connector("Internet", use_external=True),))
    switched = dataclasses.replace(facts, org=org)
    assert fingerprint_for(refs, switched) != before
    external = dataclasses.replace(
        facts, transport=transport(external=lookup(adapter=False, servers=("1.1.1.1",)))
    )
    assert fingerprint_for(refs, external) != before
    internal = dataclasses.replace(
        facts, transport=transport(internal=lookup(adapter=False, servers=("1.1.1.1",)))
    )
    assert fingerprint_for(refs, internal) == before


# --- host directories -----------------------------------------------------------------------


def test_host_directories_are_safe_and_unique() -> None:
    names = [
        "ex01.contoso.local",
        "EX01.contoso.local",
        "../../etc/passwd",
        "ex02\ncontoso",
        "con",
        "",
        "a" * 300,
        "名前.local",
        "ex01.contoso.local ",
    ]
    dirs = host_directories(names)
    assert dirs[0] == "ex01.contoso.local"
    assert len({d.casefold() for d in dirs}) == len(names)
    for d in dirs:
        assert d and len(d) <= 80 and d[0].isalnum()
        assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in d)
        assert ".." not in d.split("/")
    assert host_directories(names) == dirs


def test_two_hosts_are_planned_in_order_and_duplicates_refused() -> None:
    plan = plan_for(broken("ex01.contoso.local"), host(name="ex02.contoso.local"))
    assert [h.host for h in plan.hosts] == ["ex01.contoso.local", "ex02.contoso.local"]
    assert plan.hosts[1].actions == ()
    with pytest.raises(ValueError):
        plan_for(broken(), broken())


def test_a_host_whose_edge_config_does_not_load_gets_no_restart_from_apply() -> None:
    """Transport would not start again with the file as it is (MSExchangeTransport 14004): the
    restart the changes need is left to a person, with the reason, and the plan says which
    areas it could not take into account."""
    error = XmlSyntaxError(25, 14, "not well-formed (invalid token)", "<add key=\u201dx\u201d/>")
    issue = AreaIssue(CollectionArea.EDGE_CONFIG, f"Get-Content: {EDGE_CONFIG}: not well-formed XML")
    facts = host(
        nics=(mapi_nic(register_this_connections_address=False), replication_nic()),
        edge_file=EdgeConfigFileFacts(EDGE_CONFIG, error),
        issues=(issue,),
    )
    (hp,) = plan_for(facts).hosts
    (restart,) = [a for a in hp.actions if a.kind == RESTART_KIND]
    assert restart.manual and "line 25, column 14" in restart.description
    assert [a.kind for a in hp.automatic] == ["enable-nic-dns-registration", "register-dns-client"]
    (hold,) = [a for a in hp.advisories if a.kind is AdvisoryKind.CANNOT_PLAN]
    assert hold.fix_id == "restart-transport" and "would not start again" in hold.message
    (malformed,) = [f for f in hp.findings if f.rule_id == "edge-transport-config-malformed"]
    assert hold.finding_ids == (malformed.id,)
    assert hp.failed_areas == (issue,)
    assert [j.rule_id for j in hp.not_judged] == ["dns-fault-tolerance"]
    # Without the file's fault, the same change restarts transport through apply, as always.
    (fine,) = plan_for(dataclasses.replace(facts, edge_config_file=None)).hosts
    assert not next(a for a in fine.actions if a.kind == RESTART_KIND).manual
