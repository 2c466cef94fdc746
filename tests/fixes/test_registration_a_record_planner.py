"""enable-nic-dns-registration planned from server-a-record-wrong-nic: the MAPI NIC's
registration on, a dedicated network's off (a decision the plan shows, with its reason), the
name registered again; advice, not a change, for a NIC exfix cannot tell is dedicated."""

from __future__ import annotations

import dataclasses
import json

from agent.evaluate import evaluate
from agent.fixes import nic_registration
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts, NicFacts
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, Change, FactArea, FactRef, HostVars
from agent.model.probe import Outcome
from agent.planning import build_plan, render_plan
from agent.review import render_review
from support.facts_builders import HOST, INTERNAL_DNS, host, mapi_nic, probe, replication_nic, server_probes

BACKUP = "192.168.60.21"


def backup_nic(**changes: object) -> NicFacts:
    base: dict[str, object] = {
        "interface_index": 16,
        "interface_alias": "Backup",
        "register_this_connections_address": True,
        "ipv4_addresses": (BACKUP,),
        "ipv4_dns_servers": (INTERNAL_DNS,),
    }
    base.update(changes)
    return replication_nic(**base)


def wrong_nic_host(mapi_registers: bool = False, **backup: object) -> HostFacts:
    probes = tuple(
        probe(INTERNAL_DNS, HOST, "A", Outcome.ANSWER, (BACKUP,)) if p.qname == HOST else p
        for p in server_probes(INTERNAL_DNS)
    )
    nics = (mapi_nic(register_this_connections_address=mapi_registers), backup_nic(**backup))
    return host(nics=nics, probes=probes)


def only(facts: HostFacts) -> Finding:
    found = evaluate(facts)
    assert "nic-dns-registration-disabled" not in {f.rule_id for f in found}
    (finding,) = [f for f in found if f.rule_id == "server-a-record-wrong-nic"]
    return finding


def test_mapi_on_backup_off_then_register() -> None:
    facts = wrong_nic_host()
    finding = only(facts)
    planned = nic_registration.plan(finding, facts, HostVars())
    assert planned.advisories == ()
    enable, disable, register = planned.drafts
    assert [d.kind for d in planned.drafts] == [
        "enable-nic-dns-registration",
        "disable-nic-dns-registration",
        "register-dns-client",
    ]
    assert enable.call == CmdletCall(
        Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 12), ("RegisterThisConnectionsAddress", True))
    )
    assert disable.call == CmdletCall(
        Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 16), ("RegisterThisConnectionsAddress", False))
    )
    assert disable.changes == (Change("RegisterThisConnectionsAddress", True, False),)
    assert disable.rollback == (
        CmdletCall(
            Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 16), ("RegisterThisConnectionsAddress", True))
        ),
    )
    assert disable.read_back == CmdletCall(Endpoint.OS, "Get-DnsClient", (("InterfaceIndex", 16),))
    # The decision and its reason are in the step itself.
    assert disable.description == (
        "Turn off 'Register this connection's addresses in DNS' for NIC 'Backup' (InterfaceIndex 16): it has "
        "no default gateway and its name or description says 'backup': a dedicated network, whose address "
        "must not be the server's A record"
    )
    assert enable.restart_required and not disable.restart_required and not register.restart_required
    assert register.call == CmdletCall(Endpoint.OS, "Register-DnsClient")
    assert register.depends_on == (
        FactRef(FactArea.NIC_REGISTRATION, "12"),
        FactRef(FactArea.NIC_REGISTRATION, "16"),
    )
    assert "no longer that of NIC 'Backup' (InterfaceIndex 16)" in register.description


def test_a_nic_exfix_cannot_tell_is_dedicated_is_left_on_and_the_plan_says_so() -> None:
    facts = wrong_nic_host(interface_alias="LAN 2")
    finding = only(facts)
    planned = nic_registration.plan(finding, facts, HostVars())
    assert [d.kind for d in planned.drafts] == ["enable-nic-dns-registration", "register-dns-client"]
    (advice,) = planned.advisories
    assert advice.kind is AdvisoryKind.CANNOT_PLAN and advice.finding_ids == (finding.id,)
    assert advice.message.startswith(
        "NIC 'LAN 2' (InterfaceIndex 16): it has no default gateway, but neither"
    )
    assert "Set-DnsClient -InterfaceIndex 16 -RegisterThisConnectionsAddress $false" in advice.message


def test_only_what_differs_is_planned() -> None:
    # The MAPI NIC registers already (the record is stale or its update failed): no enable
    # step, and so no transport restart; the backup NIC still goes off.
    facts = wrong_nic_host(mapi_registers=True)
    planned = nic_registration.plan(only(facts), facts, HostVars())
    assert [d.kind for d in planned.drafts] == ["disable-nic-dns-registration", "register-dns-client"]


def test_facts_that_moved_since_the_scan_are_not_planned() -> None:
    facts = wrong_nic_host()
    finding = only(facts)
    moved = dataclasses.replace(facts, mapi_nic=dataclasses.replace(facts.mapi_nic, interface_index=16))
    (advice,) = nic_registration.plan(finding, moved, HostVars()).advisories
    assert advice.kind is AdvisoryKind.CANNOT_PLAN and "no longer the MAPI NIC" in advice.message
    gone = dataclasses.replace(facts, nics=facts.nics[:1])
    planned = nic_registration.plan(finding, gone, HostVars())
    assert [d.kind for d in planned.drafts] == ["enable-nic-dns-registration", "register-dns-client"]
    assert "no longer in the facts" in planned.advisories[0].message


def test_the_plan_shows_the_decision_in_review_md_and_plan_json() -> None:
    facts = wrong_nic_host()
    plan = build_plan([facts], {facts.host: evaluate(facts)}, {})
    (unit,) = plan.hosts
    assert [a.kind for a in unit.actions] == [
        "enable-nic-dns-registration",
        "disable-nic-dns-registration",
        "register-dns-client",
        "restart-transport",
    ]
    review = render_review(plan, render_plan(plan), "plan.json")
    assert (
        "Turn off 'Register this connection's addresses in DNS' for NIC 'Backup' (InterfaceIndex 16)"
        in review
    )
    assert "a dedicated network, whose address must not be the server" in review
    document = json.dumps(plan.to_dict())
    assert "disable-nic-dns-registration" in document and '"turn_off": [16]' in document

    left = wrong_nic_host(interface_alias="LAN 2")
    plan = build_plan([left], {left.host: evaluate(left)}, {})
    review = render_review(plan, render_plan(plan), "plan.json")
    assert "### Advice (not changed by exfix)" in review
    assert "exfix leaves its registration as it is" in review
    assert "disable-nic-dns-registration" not in json.dumps(plan.to_dict())
