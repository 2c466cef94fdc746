"""plan.json: a lossless round trip, and a strict reader that names the file and the key."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agent.errors import FactsFileError
from agent.evaluate import evaluate
from agent.fixes.registry import KINDS
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import AreaIssue, CollectionArea, TransportNoun
from agent.model.finding_data import DATA_BY_RULE, EnableRegistration, SetInternalDns
from agent.model.findings import NotJudged
from agent.model.plan import (
    HostVars,
    Plan,
    call_from_dict,
    change_from_dict,
    plan_from_dict,
    plan_from_json,
    value_from_json,
)
from agent.planning import build_plan
from support.facts_builders import broken


def sample() -> Plan:
    facts = broken(alias="Eth'0 $(x)\n`\u202e\x1b[31m名前")
    return build_plan([facts], {facts.host: evaluate(facts)}, {facts.host: HostVars(("203.0.113.53",))})


def test_plan_json_round_trip_is_lossless() -> None:
    plan = sample()
    text = plan.to_json()
    assert text.isascii()  # ensure_ascii: escapes stay escapes in the file
    again = plan_from_json(text, source="plan.json")
    assert again == plan
    assert again.to_json() == text


def test_finding_data_reads_back_typed() -> None:
    (hp,) = plan_from_json(sample().to_json(), source="plan.json").hosts
    by_rule = {f.rule_id: f.data for f in hp.findings}
    assert by_rule["nic-dns-registration-disabled"] == EnableRegistration(
        interface_index=12, interface_alias="Eth'0 $(x)\n`\u202e\x1b[31m名前", fqdn="ex01.contoso.local"
    )
    internal = by_rule["transport-internal-dns-misconfigured"]
    assert isinstance(internal, SetInternalDns) and internal.transport_noun is TransportNoun.TRANSPORT_SERVICE
    assert all(type(data) is DATA_BY_RULE[rule_id] for rule_id, data in by_rule.items())


def test_a_finding_without_data_round_trips_as_an_empty_object() -> None:
    plan = sample()
    (hp,) = plan.hosts
    bare = dataclasses.replace(hp, findings=tuple(dataclasses.replace(f, data=None) for f in hp.findings))
    unsigned = dataclasses.replace(plan, hosts=(bare,))
    signed = dataclasses.replace(unsigned, digest=unsigned.compute_digest())
    text = signed.to_json()
    assert all(f["data"] == {} for f in json.loads(text)["hosts"][0]["findings"])
    assert plan_from_json(text) == signed


def test_switch_parameters_survive_the_round_trip() -> None:
    plan = sample()
    (hp,) = plan.hosts
    action = hp.actions[0]
    tweaked_call = CmdletCall(Endpoint.OS, "Restart-Service", (("Name", "x"), ("Force", SWITCH)))
    import dataclasses

    changed = dataclasses.replace(
        hp, actions=(dataclasses.replace(action, call=tweaked_call), *hp.actions[1:])
    )
    unsigned = dataclasses.replace(plan, hosts=(changed,))
    resigned = dataclasses.replace(unsigned, digest=unsigned.compute_digest())
    assert plan_from_json(resigned.to_json()).hosts[0].actions[0].call == tweaked_call


def _broken_file(edit: Any) -> dict[str, Any]:
    data = json.loads(sample().to_json())
    edit(data)
    return data


def _key_of(data: dict[str, Any]) -> str | None:
    with pytest.raises(FactsFileError) as caught:
        plan_from_dict(data, source="plans/p1/plan.json", kinds=KINDS)
    assert "plans/p1/plan.json" in str(caught.value)
    return caught.value.key


def _finding(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = data["hosts"][0]["findings"][0]
    return result


def _action(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = data["hosts"][0]["actions"][1]
    return result


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.update(schema="exfix.plan/99"), "schema"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.pop("digest"), "digest"),
        (lambda d: d.update(digest="ABC"), "digest"),
        (lambda d: _action(d).update(surprise=True), "hosts[0].actions[1].surprise"),
        (lambda d: _action(d).pop("fingerprint"), "hosts[0].actions[1].fingerprint"),
        (lambda d: _action(d).update(disruptive="yes"), "hosts[0].actions[1].disruptive"),
        (lambda d: _action(d).update(kind="format-disk"), "hosts[0].actions[1].kind"),
        (lambda d: _action(d)["call"].update(cmdlet="Set-DnsClient; rm"), "hosts[0].actions[1].call.cmdlet"),
        (lambda d: _action(d)["call"].update(endpoint="ssh"), "hosts[0].actions[1].call.endpoint"),
        (
            lambda d: _action(d)["call"]["parameters"].append(["Bad Name", 1]),
            "hosts[0].actions[1].call.parameters[2]",
        ),
        (
            lambda d: _action(d)["call"]["parameters"].append(["X", {"run": "code"}]),
            "hosts[0].actions[1].call.parameters[2]",
        ),
        (lambda d: _action(d)["changes"][0].update(before=[1, "a"]), "hosts[0].actions[1].changes[0].before"),
        (lambda d: d["hosts"][0].update(directory="../x"), "hosts[0].directory"),
        (lambda d: d["hosts"][0]["scripts"].pop("rollback.ps1"), "hosts[0].scripts"),
        (lambda d: d["hosts"][0]["findings"][0].update(id="forged"), "hosts[0].findings[0].id"),
        (lambda d: d["hosts"][0]["advisories"].append({"kind": "no-fix"}), "hosts[0].advisories[0].fix_id"),
        # A finding's data is its rule's typed request, read as strictly as the rest.
        (
            lambda d: _finding(d)["data"].update(interface_index="12"),
            "hosts[0].findings[0].data.interface_index",
        ),
        (lambda d: _finding(d)["data"].pop("fqdn"), "hosts[0].findings[0].data.fqdn"),
        (lambda d: _finding(d)["data"].update(bad={"nested": 1}), "hosts[0].findings[0].data.bad"),
        (lambda d: _finding(d).update(data=[1]), "hosts[0].findings[0].data"),
        (lambda d: d["hosts"][0]["findings"][1]["data"]["drop_servers"].append(8),
         "hosts[0].findings[1].data.drop_servers[1]"),
    ],
)
def test_strict_reader_names_the_key(edit: Any, key: str) -> None:
    assert _key_of(_broken_file(edit)) == key


def test_a_changed_plan_with_the_old_digest_is_refused() -> None:
    def forge(d: dict[str, Any]) -> None:
        _action(d)["call"]["parameters"][0][1] = 13  # another InterfaceIndex

    assert _key_of(_broken_file(forge)) == "digest"


def test_script_hashes_are_outside_the_digest_but_validated() -> None:
    data = _broken_file(lambda d: d["hosts"][0]["scripts"].update({"remediate.ps1": "0" * 64}))
    plan = plan_from_dict(copy.deepcopy(data))  # the digest still matches the content
    assert plan.hosts[0].script_sha256("remediate.ps1") == "0" * 64
    data["hosts"][0]["scripts"]["remediate.ps1"] = "not-a-hash"
    assert _key_of(data) == "hosts[0].scripts.remediate.ps1"


def test_not_json_names_the_line() -> None:
    with pytest.raises(FactsFileError) as caught:
        plan_from_json('{\n"schema": ', source="plan.json")
    assert caught.value.line == 2


V1_PLAN = Path(__file__).resolve().parents[1] / "data" / "plan-v1-mixed-fleet.json"


def test_a_plan_written_as_exfix_plan_1_still_reads_and_keeps_its_digest() -> None:
    # Written by exfix before the organisation level existed (exfix.plan/1, mixed-fleet lab).
    text = V1_PLAN.read_text(encoding="utf-8")
    plan = plan_from_json(text, source=str(V1_PLAN), kinds=KINDS)
    assert plan.schema == "exfix.plan/1" and plan.organizations == ()
    assert plan.compute_digest() == plan.digest
    assert plan.to_dict() == json.loads(text)  # encoded back as /1, key for key
    assert all(f.servers == () for h in plan.hosts for f in h.findings)
    stray = json.loads(text)
    stray["organizations"] = []
    with pytest.raises(FactsFileError, match="organizations"):
        plan_from_dict(stray, check_digest=False)


V2_PLAN = Path(__file__).resolve().parents[1] / "data" / "plan-v2-mixed-fleet.json"


def test_a_plan_written_as_exfix_plan_2_still_reads_and_keeps_its_digest() -> None:
    # Written by exfix before plans said what stands in the way of each finding and what their
    # steps would break (exfix.plan/2, mixed-fleet lab without exfix_external_dns_servers).
    text = V2_PLAN.read_text(encoding="utf-8")
    plan = plan_from_json(text, source=str(V2_PLAN), kinds=KINDS)
    assert plan.schema == "exfix.plan/2" and plan.organizations
    assert plan.compute_digest() == plan.digest
    assert plan.to_dict() == json.loads(text)  # encoded back as /2, key for key
    assert all(u.outstanding == () and u.consequences == () for u in plan.units)
    assert all(h.failed_areas == () and h.not_judged == () for h in plan.hosts)
    stray = json.loads(text)
    stray["hosts"][0]["outstanding"] = []
    with pytest.raises(FactsFileError, match="outstanding"):
        plan_from_dict(stray, check_digest=False)


V3_PLAN = Path(__file__).resolve().parents[1] / "data" / "plan-v3-mixed-fleet.json"


def test_a_plan_written_as_exfix_plan_3_still_reads_and_keeps_its_digest() -> None:
    # Written by exfix before plans named the fact areas they could not collect (exfix.plan/3,
    # mixed-fleet lab).
    text = V3_PLAN.read_text(encoding="utf-8")
    plan = plan_from_json(text, source=str(V3_PLAN), kinds=KINDS)
    assert plan.schema == "exfix.plan/3" and plan.organizations
    assert plan.compute_digest() == plan.digest
    assert plan.to_dict() == json.loads(text)  # encoded back as /3, key for key
    assert all(h.failed_areas == () and h.not_judged == () for h in plan.hosts)
    stray = json.loads(text)
    stray["hosts"][0]["not_judged"] = []
    with pytest.raises(FactsFileError, match="not_judged"):
        plan_from_dict(stray, check_digest=False)


def test_a_plan_records_the_failed_areas_and_the_rules_not_judged_inside_its_digest() -> None:
    plan = sample()
    host = plan.hosts[0]
    partial = dataclasses.replace(
        host,
        failed_areas=(AreaIssue(CollectionArea.QUEUES, "Get-Queue: access denied"),),
        not_judged=(NotJudged("queue-dns-failure", host.host, "Queues fail", ("queues",), "it reads it"),),
    )
    changed = dataclasses.replace(plan, hosts=(partial, *plan.hosts[1:]))
    assert changed.compute_digest() != plan.compute_digest()  # the board approves what was not judged
    signed = dataclasses.replace(changed, digest=changed.compute_digest())
    again = plan_from_json(signed.to_json(), source="plan.json", kinds=KINDS)
    assert again.hosts[0].failed_areas == partial.failed_areas
    assert again.hosts[0].not_judged == partial.not_judged
    data = json.loads(signed.to_json())
    data["hosts"][0]["failed_areas"][0]["area"] = "registry"
    assert _key_of(data) == "hosts[0].failed_areas[0].area"


def test_calls_read_on_their_own_name_their_place_in_the_file() -> None:
    # The apply journal reads calls and values outside a plan: errors carry the journal's key.
    with pytest.raises(FactsFileError) as caught:
        call_from_dict({"endpoint": "os", "cmdlet": "Bad; cmdlet", "parameters": []},
                       source="journal.json", key="entries[0].rollback[1]")  # fmt: skip
    assert caught.value.key == "entries[0].rollback[1].cmdlet"
    with pytest.raises(FactsFileError) as caught:
        change_from_dict({"property": "P", "before": [1, "a"], "after": 1},
                         source="j", key="entries[0].changes[0]")  # fmt: skip
    assert caught.value.key == "entries[0].changes[0].before"
    with pytest.raises(FactsFileError) as caught:
        value_from_json({"x": 1}, source="j", key="entries[0].before.P")
    assert caught.value.key == "entries[0].before.P"
    assert value_from_json(["a", "b"], source="j", key="k") == ("a", "b")


def test_an_error_in_plan_json_names_the_line_of_its_key() -> None:
    text = sample().to_json().replace('"kind": "set-', '"kind": "Set-', 1)
    with pytest.raises(FactsFileError) as caught:
        plan_from_json(text, source="plan.json", check_digest=False)
    assert caught.value.key is not None and caught.value.key.endswith(".kind")
    assert caught.value.line is not None and '"kind": "Set-' in text.splitlines()[caught.value.line - 1]
