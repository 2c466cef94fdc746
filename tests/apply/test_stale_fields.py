"""A stale-plan refusal carries its fields: per drifted step, the host, the step, the fact
slice (area, key), the setting, its planned and its current value; the journal's
stale-check record and ``exfix apply --format json`` carry the same. The lab tests change a
host between plan and apply; the unit tests run the pure diff
(agent.fixes.fingerprint.stale_settings) on plain data."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from agent.errors import EXIT_REFUSED, NOT_RECORDED, StalePlanError, StaleSetting
from agent.fixes.fingerprint import fingerprint_for, stale_settings
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts
from agent.model.plan import Action, Change, FactArea, FactRef
from apply._apply_support import REPO, LabFleet, full_state, journal_lines, lab_fleet
from support.facts_builders import INTERNAL_DNS, host, lookup, mapi_nic, transport

HOST = "ex01.contoso.local"
STEP = "01-set-nic-dns-servers"
NIC = 4  # the MAPI NIC of the nic-external-dns scenario, DNS servers 10.0.0.10, 8.8.8.8


# --- over the lab ---------------------------------------------------------------------------


def _set_nic_servers(fleet: LabFleet, servers: tuple[str, ...]) -> None:
    """Someone changes the MAPI NIC's DNS servers between plan and apply, over the protocol."""
    fleet.set_nic_dns_servers(servers, NIC)


@pytest.mark.lab
def test_a_nic_changed_over_the_protocol_names_host_step_slice_setting_and_both_values(
    tmp_path: Path,
) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        _set_nic_servers(fleet, ("10.0.0.11", "10.0.0.10"))
        drifted = full_state(fleet.lab, HOST)
        with pytest.raises(StalePlanError) as caught:
            fleet.apply(plan_file, allow_restart=True)
        assert full_state(fleet.lab, HOST) == drifted  # refused: nothing changed
    error = caught.value
    assert error.exit_code == EXIT_REFUSED
    expected = StaleSetting(HOST, STEP, "nic-dns-servers", str(NIC), "ServerAddresses",
                            ("10.0.0.10", "8.8.8.8"), ("10.0.0.11", "10.0.0.10"))  # fmt: skip
    assert error.drift == (expected,)
    assert error.hosts == (HOST,)
    assert str(error) == (
        "refused, nothing changed: the plan is stale, the facts its steps depend on changed since it was "
        f"made: {HOST} step {STEP}: nic-dns-servers 4 ServerAddresses planned ['10.0.0.10', '8.8.8.8'], "
        "now ['10.0.0.11', '10.0.0.10']. Plan again"
    )
    lines = journal_lines(plan_file.default_journal)
    (check,) = [r for r in lines if r["phase"] == "stale-check"]
    assert check["result"] == "drifted" and check["host"] == HOST
    assert check["detail"] == {
        "actions": [f"{STEP} (nic-dns-servers 4)"],
        "drift": [{
            "host": HOST, "action": STEP, "area": "nic-dns-servers", "key": "4", "setting": "ServerAddresses",
            "planned": ["10.0.0.10", "8.8.8.8"], "current": ["10.0.0.11", "10.0.0.10"],
            "recorded": True, "certain": True,
        }],
    }  # fmt: skip
    (refused,) = [r for r in lines if r["phase"] == "refused"]
    assert refused["error"] == str(error) and refused["detail"]["drift"] == check["detail"]["drift"]


@pytest.mark.lab
def test_a_change_the_plan_does_not_record_is_reported_as_such(tmp_path: Path) -> None:
    """The NIC's alias is in the slice but no step records its planned value: exfix says the
    slice changed and shows it as it is now, and invents no planned value."""
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        # No cmdlet of the lab renames a NIC (Rename-NetAdapter), so the state is changed under
        # the organisation's lock, as a cmdlet would change it.
        state = fleet.host(HOST).state
        with fleet.lab.fleet.org.lock:
            (nic,) = [n for n in state.nics if n.index == NIC]
            nic.alias = "MAPI renamed"
        with pytest.raises(StalePlanError) as caught:
            fleet.apply(plan_file, allow_restart=True)
    (item,) = caught.value.drift
    assert (item.host, item.action, item.area, item.key) == (HOST, STEP, "nic-dns-servers", "4")
    assert (item.setting, item.planned, item.recorded, item.certain) == (None, None, False, True)
    assert isinstance(item.current, Mapping) and item.current["interface_alias"] == "MAPI renamed"
    assert f"{STEP}: nic-dns-servers 4 {NOT_RECORDED}" in str(caught.value)


@pytest.mark.lab
def test_apply_format_json_prints_the_drift_for_ticket_systems(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agent.cli import main

    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        _set_nic_servers(fleet, ("10.0.0.10",))
        result = CliRunner().invoke(main, [
            "apply", str(plan_file.path), "--approve", plan_file.plan.digest, "--allow-restart",
            "-i", str(fleet.inventory_path), "--format", "json",
        ])  # fmt: skip
    assert result.exit_code == EXIT_REFUSED, result.output
    document = json.loads(result.stdout)
    assert document["exit_code"] == EXIT_REFUSED and document["plan_digest"] == plan_file.plan.digest
    assert document["refused"]["error"] == "StalePlanError"
    assert document["refused"]["drift"] == [{
        "host": HOST, "action": STEP, "area": "nic-dns-servers", "key": "4", "setting": "ServerAddresses",
        "planned": ["10.0.0.10", "8.8.8.8"], "current": ["10.0.0.10"], "recorded": True, "certain": True,
    }]  # fmt: skip
    assert "refused, nothing changed" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.lab
def test_a_playbook_run_refused_as_stale_carries_the_drift_in_its_document(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from jsonschema import Draft202012Validator

    from agent.cli import main

    schema = json.loads((REPO / "agent" / "schemas" / "playbook-run.schema.json").read_text(encoding="utf-8"))

    def run(*args: str) -> tuple[int, dict[str, object]]:
        argv = ["playbook", "run", "dns-451-remediate", *args]
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        document = json.loads(result.stdout)
        Draft202012Validator(schema).validate(document)
        return result.exit_code, document

    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        base = ("--inventory", str(fleet.inventory_path), "--out", str(tmp_path / "runs"), "--format", "json")
        code, first = run(*base)
        assert code == 2 and first["approval"]["stale"] == []
        # Still broken after the change (a public server first now), so the playbook plans
        # again, finds the reviewed plan in its run directory and apply refuses it as stale.
        _set_nic_servers(fleet, ("8.8.8.8", "10.0.0.10"))
        code, second = run(*base, "--approve", str(first["digest"]))
    assert code == EXIT_REFUSED, (second["message"], second["hosts"])
    approval = second["approval"]
    assert isinstance(approval, dict) and "refused, nothing changed" in approval["refused"]
    assert approval["stale"] == [{
        "host": HOST, "action": STEP, "area": "nic-dns-servers", "key": "4", "setting": "ServerAddresses",
        "planned": ["10.0.0.10", "8.8.8.8"], "current": ["8.8.8.8", "10.0.0.10"], "recorded": True,
        "certain": True,
    }]  # fmt: skip


# --- the pure diff, on plain data -------------------------------------------------------------


NIC_REF = FactRef(FactArea.NIC_DNS_SERVERS, "12")  # facts_builders' MAPI NIC
EXTERNAL = FactRef(FactArea.TRANSPORT_EXTERNAL_DNS)
EXCHANGE = FactRef(FactArea.EXCHANGE_SERVER)


def _planned() -> HostFacts:
    return host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")),),
                transport_facts=transport(external=lookup(adapter=True, servers=())))  # fmt: skip


def _with_nic(**changes: object) -> HostFacts:
    facts = _planned()
    (nic,) = facts.nics
    return dataclasses.replace(facts, nics=(dataclasses.replace(nic, **changes),))


def _action(facts: HostFacts, refs: tuple[FactRef, ...], changes: tuple[Change, ...]) -> Action:
    return Action(
        id="01-step", kind="set-nic-dns-servers", fix_id="set-nic-dns-servers",
        call=CmdletCall(Endpoint.OS, "Get-DnsClient", ()), description="a step", changes=changes,
        read_back=None, rollback=(), disruptive=False, restart_required=False, manual=False,
        finding_ids=(), depends_on=refs, fingerprint=fingerprint_for(refs, facts),
    )  # fmt: skip


NIC_CHANGE = Change("ServerAddresses", (INTERNAL_DNS, "8.8.8.8"), (INTERNAL_DNS,))
TRANSPORT_CHANGES = (
    Change("ExternalDNSServers", (), ("192.0.2.53",)),
    Change("ExternalDNSAdapterEnabled", True, False),
)


def test_nothing_is_reported_while_the_fingerprint_matches() -> None:
    facts = _planned()
    assert stale_settings(HOST, _action(facts, (NIC_REF,), (NIC_CHANGE,)), facts) == ()


def test_a_recorded_setting_that_changed_is_reported_with_its_planned_and_current_value() -> None:
    action = _action(_planned(), (NIC_REF,), (NIC_CHANGE,))
    now = _with_nic(ipv4_dns_servers=("10.0.0.11",))
    assert stale_settings(HOST, action, now) == (
        StaleSetting(HOST, "01-step", "nic-dns-servers", "12", "ServerAddresses",
                     (INTERNAL_DNS, "8.8.8.8"), ("10.0.0.11",)),
    )  # fmt: skip


def test_windows_ipv6_placeholders_are_neither_drift_nor_lost_when_the_plan_is_rebuilt() -> None:
    """ServerAddresses is recorded without the fec0:0:0:ffff::1-3 placeholders; a NIC that
    lists them still rebuilds to the planned slice, so the diff is exact."""
    placeholders = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2")
    planned = _with_nic(ipv6_dns_servers=placeholders)
    action = _action(planned, (NIC_REF,), (NIC_CHANGE,))
    now = _with_nic(ipv4_dns_servers=(INTERNAL_DNS,), ipv6_dns_servers=placeholders)
    (item,) = stale_settings(HOST, action, now)
    assert (item.setting, item.planned, item.current, item.recorded) == (
        "ServerAddresses", (INTERNAL_DNS, "8.8.8.8"), (INTERNAL_DNS,), True)


def test_an_unrecorded_setting_is_named_as_not_recorded_and_no_planned_value_is_invented() -> None:
    action = _action(_planned(), (NIC_REF,), (NIC_CHANGE,))
    (item,) = stale_settings(HOST, action, _with_nic(interface_alias="MAPI 2"))
    assert (item.area, item.key, item.setting, item.planned) == ("nic-dns-servers", "12", None, None)
    assert (item.recorded, item.certain) == (False, True)
    assert isinstance(item.current, Mapping) and item.current["interface_alias"] == "MAPI 2"
    assert item.describe() == f"nic-dns-servers 12 {NOT_RECORDED}"


def test_a_recorded_and_an_unrecorded_change_are_both_reported() -> None:
    action = _action(_planned(), (NIC_REF,), (NIC_CHANGE,))
    found = stale_settings(HOST, action, _with_nic(interface_alias="MAPI 2", ipv4_dns_servers=("10.0.0.11",)))
    assert (found[0].setting, found[0].planned, found[0].current, found[0].recorded) == (
        "ServerAddresses", (INTERNAL_DNS, "8.8.8.8"), ("10.0.0.11",), True)
    assert [(i.setting, i.recorded) for i in found][1:] == [(None, False)]


def test_with_several_slices_an_unexplained_change_lists_each_candidate_as_uncertain() -> None:
    """One fingerprint covers all of a step's slices: when no recorded value explains the
    change, every slice is a candidate and none is said to be the one."""
    planned = _planned()
    action = _action(planned, (EXCHANGE, EXTERNAL), TRANSPORT_CHANGES)
    renamed = dataclasses.replace(planned.exchange, fqdn="renamed.contoso.local")
    now = dataclasses.replace(planned, exchange=renamed)
    found = stale_settings(HOST, action, now)
    assert [(i.area, i.key, i.recorded, i.certain) for i in found] == [
        ("exchange-server", "", False, False), ("transport-external-dns", "", False, False)]
    assert all(i.planned is None and i.setting is None for i in found)


def test_a_recorded_transport_setting_that_changed_explains_the_drift_of_a_two_slice_step() -> None:
    planned = _planned()
    action = _action(planned, (EXCHANGE, EXTERNAL), TRANSPORT_CHANGES)
    changed = transport(external=lookup(adapter=False, servers=("10.0.0.99",)))
    now = dataclasses.replace(planned, transport=changed)
    found = stale_settings(HOST, action, now)
    assert [(i.area, i.setting, i.planned, i.current) for i in found] == [
        ("transport-external-dns", "ExternalDNSServers", (), ("10.0.0.99",)),
        ("transport-external-dns", "ExternalDNSAdapterEnabled", True, False),
    ]


def test_a_slice_that_is_gone_is_reported_with_current_none() -> None:
    action = _action(_planned(), (NIC_REF,), (NIC_CHANGE,))
    now = dataclasses.replace(_planned(), nics=(mapi_nic(interface_index=13),))
    found = stale_settings(HOST, action, now)
    assert (found[0].setting, found[0].planned, found[0].current) == (
        "ServerAddresses", (INTERNAL_DNS, "8.8.8.8"), None)
    assert found[-1].recorded is False and found[-1].current is None


def test_the_message_is_one_line_built_from_the_fields() -> None:
    error = StalePlanError((
        StaleSetting("ex01", "01-a", "nic-dns-servers", "12", "ServerAddresses", ("10.0.0.10",), ()),
        StaleSetting("ex01", "01-a", "nic-dns-servers", "12", None, None, {"interface_alias": "x"},
                     recorded=False),
        StaleSetting("ex02", "02-b", "transport-external-dns", "", "ExternalDNSAdapterEnabled", True, False),
    ))  # fmt: skip
    assert str(error) == (
        "refused, nothing changed: the plan is stale, the facts its steps depend on changed since it was "
        "made: ex01 step 01-a: nic-dns-servers 12 ServerAddresses planned ['10.0.0.10'], now []; "
        f"nic-dns-servers 12 {NOT_RECORDED} | ex02 step 02-b: transport-external-dns "
        "ExternalDNSAdapterEnabled planned true, now false. Plan again"
    )
    assert error.hosts == ("ex01", "ex02") and error.exit_code == EXIT_REFUSED
    assert error.drift[1].to_dict()["current"] == {"interface_alias": "x"}
    assert json.loads(json.dumps([d.to_dict() for d in error.drift]))[0]["planned"] == ["10.0.0.10"]
