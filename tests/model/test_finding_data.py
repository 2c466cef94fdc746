"""The typed data each rule's findings carry: one frozen class per rule, the same JSON keys and
values as the string-keyed pairs they replace, and a strict reader for plan.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from agent.errors import FactsFileError
from agent.evaluate import evaluate
from agent.model.facts import TransportNoun
from agent.model.finding_data import (
    DATA_BY_RULE,
    FINDING_DATA,
    AddSmartHostConnector,
    ClearDnsClientCache,
    ConfigureTransportDns,
    DisableFirewallBlock,
    DomainWithoutMailDns,
    EnableRegistration,
    FindingData,
    FindingDataError,
    IntermittentDnsServer,
    MalformedEdgeConfig,
    QueueSymptom,
    RegisterMapiNic,
    SetDnsFaultTolerance,
    SetExternalDns,
    SetInternalDns,
    SetNicDnsServers,
    SymptomScope,
    UnreachableDnsServer,
    by_rule,
    data_from_dict,
    merged,
)
from agent.model.findings import Finding, Severity
from agent.rules import _common
from agent.rules import nic_dns_registration_disabled as registration_rule
from support.facts_builders import host, internal_queue, mapi_nic

# One value of every rule's data, with the JSON each must encode to: the keys (and their
# order) and the values findings had as string-keyed pairs, which scan JSON and plan.json show.
SAMPLES: tuple[tuple[FindingData, dict[str, Any]], ...] = (
    (
        QueueSymptom(SymptomScope.ALL_EXTERNAL, ("EX01\\12", "EX01\\13"), ("ServerFailure",),
                     ("fabrikam.com", "tailspintoys.com"), 7),
        {"scope": "all-external", "queues": ["EX01\\12", "EX01\\13"], "error_classes": ["ServerFailure"],
         "domains": ["fabrikam.com", "tailspintoys.com"], "message_count": 7},
    ),
    (
        EnableRegistration(12, "Ethernet0", "ex01.contoso.local"),
        {"interface_index": 12, "interface_alias": "Ethernet0", "fqdn": "ex01.contoso.local"},
    ),
    (
        RegisterMapiNic("ex01.contoso.local", ("192.168.60.21",), 12, "Ethernet0", ("10.0.0.21",), (16,),
                        ("Backup",), ("it has no default gateway and its name says 'backup'",), (16,)),
        {"fqdn": "ex01.contoso.local", "a_record": ["192.168.60.21"], "interface_index": 12,
         "interface_alias": "Ethernet0", "mapi_addresses": ["10.0.0.21"], "other_indexes": [16],
         "other_aliases": ["Backup"], "decisions": ["it has no default gateway and its name says 'backup'"],
         "turn_off": [16]},
    ),
    (
        SetNicDnsServers(12, "Ethernet0", ("10.0.0.10", "8.8.8.8"), ("10.0.0.10",), ("8.8.8.8",),
                         ("10.0.0.10",), "contoso.local"),
        {"interface_index": 12, "interface_alias": "Ethernet0", "current_servers": ["10.0.0.10", "8.8.8.8"],
         "keep_servers": ["10.0.0.10"], "drop_servers": ["8.8.8.8"], "candidate_servers": ["10.0.0.10"],
         "ad_domain": "contoso.local"},
    ),
    (
        SetExternalDns(TransportNoun.TRANSPORT_SERVICE, "internal", True, ("10.0.0.11",), (),
                       ("Internet",), "microsoft.com"),
        {"transport_noun": "TransportService", "settings_side": "internal", "adapter_enabled": True,
         "current_servers": ["10.0.0.11"], "candidate_servers": [], "connectors_to_switch": ["Internet"],
         "public_name": "microsoft.com"},
    ),
    (
        SetInternalDns(TransportNoun.TRANSPORT_SERVER, ("8.8.8.8",), ("10.0.0.10",), ("10.0.0.10",),
                       "contoso.local"),
        {"transport_noun": "TransportServer", "current_servers": ["8.8.8.8"],
         "candidate_servers": ["10.0.0.10"], "adapter_servers": ["10.0.0.10"], "ad_domain": "contoso.local"},
    ),
    (
        ConfigureTransportDns(TransportNoun.TRANSPORT_SERVICE, ("external", "internal"), ()),
        {"transport_noun": "TransportService", "sides": ["external", "internal"], "adapter_servers": []},
    ),
    (
        AddSmartHostConnector("fabrikam.com", ("mx1.fabrikam.com",), ("203.0.113.10",), ("EX01\\12",),
                              ("EX01",), "fabrikam.com smart host"),
        {"domain": "fabrikam.com", "mx_hosts": ["mx1.fabrikam.com"], "smart_hosts": ["203.0.113.10"],
         "queues": ["EX01\\12"], "source_transport_servers": ["EX01"],
         "connector_name": "fabrikam.com smart host"},
    ),
    (
        DomainWithoutMailDns("nowhere.example", ("EX01\\14",)),
        {"domain": "nowhere.example", "queues": ["EX01\\14"]},
    ),
    (
        UnreachableDnsServer("10.0.0.99", ("NIC 'Ethernet0' (InterfaceIndex 12)",), ("host", "orchestrator")),
        {"server": "10.0.0.99", "configured_on": ["NIC 'Ethernet0' (InterfaceIndex 12)"],
         "vantages": ["host", "orchestrator"]},
    ),
    (
        IntermittentDnsServer("10.0.0.10", ("NIC 'Ethernet0' (InterfaceIndex 12)",), ("host",), 12, 6, 50,
                              3000, None),
        {"server": "10.0.0.10", "configured_on": ["NIC 'Ethernet0' (InterfaceIndex 12)"],
         "vantages": ["host"], "attempts": 12, "failures": 6, "failure_percent": 50, "latency_avg_us": 3000,
         "latency_max_us": None},
    ),
    (
        SetDnsFaultTolerance("C:\\x\\EdgeTransport.exe.config", "Normal", "Lenient"),
        {"config_path": "C:\\x\\EdgeTransport.exe.config", "current_value": "Normal",
         "desired_value": "Lenient"},
    ),
    (
        MalformedEdgeConfig("C:\\x\\EdgeTransport.exe.config", 12, 31, "mismatched tag"),
        {"config_path": "C:\\x\\EdgeTransport.exe.config", "line": 12, "column": 31,
         "xml_error": "mismatched tag"},
    ),
    (
        ClearDnsClientCache("fabrikam.com", ("EX01\\12",), ("fabrikam.com",), ("MX",), (9003,), (840,)),
        {"domain": "fabrikam.com", "queues": ["EX01\\12"], "entries": ["fabrikam.com"],
         "record_types": ["MX"], "statuses": [9003], "time_to_live": [840]},
    ),
    (
        DisableFirewallBlock(
            "10.0.0.10", ("NIC 'Ethernet' (InterfaceIndex 4)",), ("timeout",), ("answer",),
            ("Block-DNS",), True, "", "Domain",
        ),
        {"server": "10.0.0.10", "configured_on": ["NIC 'Ethernet' (InterfaceIndex 4)"],
         "host_outcomes": ["timeout"], "orchestrator_outcomes": ["answer"],
         "rules": ["Block-DNS"],
         "firewall_read": True, "firewall_issue": "", "default_block_profile": "Domain"},
    ),
)  # fmt: skip


def test_every_rule_has_one_sample() -> None:
    assert sorted(type(value).__name__ for value, _ in SAMPLES) == sorted(c.__name__ for c in FINDING_DATA)


@pytest.mark.parametrize(("value", "encoded"), SAMPLES, ids=lambda v: type(v).__name__)
def test_json_keeps_the_keys_their_order_and_the_values(value: FindingData, encoded: dict[str, Any]) -> None:
    written = value.to_dict()
    assert list(written) == list(encoded)  # field order is the order plan.json and scan JSON show
    assert json.dumps(written) == json.dumps(encoded)  # lists for tuples, enums by value


@pytest.mark.parametrize(("value", "encoded"), SAMPLES, ids=lambda v: type(v).__name__)
def test_json_reads_back_to_the_same_typed_value(value: FindingData, encoded: dict[str, Any]) -> None:
    again = data_from_dict(value.RULE, json.loads(json.dumps(encoded)), source="plan.json")
    assert again == value and type(again) is type(value)


@pytest.mark.parametrize(("value", "encoded"), SAMPLES, ids=lambda v: type(v).__name__)
def test_data_is_frozen_and_slotted(value: FindingData, encoded: dict[str, Any]) -> None:
    name = next(iter(encoded))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, None)
    assert not hasattr(value, "__dict__")


def test_a_finding_shows_its_data_under_the_same_key_and_an_absent_one_as_empty() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=False),), queues=(internal_queue(),))
    by_rule_id = {f.rule_id: f for f in evaluate(facts)}
    registration = by_rule_id["nic-dns-registration-disabled"]
    assert isinstance(registration.data, EnableRegistration)
    assert registration.to_dict()["data"] == {
        "interface_index": 12,
        "interface_alias": "Ethernet0",
        "fqdn": "ex01.contoso.local",
    }
    symptom = by_rule_id["queue-dns-failure"].data
    assert isinstance(symptom, QueueSymptom) and symptom.scope is SymptomScope.INTERNAL
    bare = dataclasses.replace(registration, data=None)
    assert bare.to_dict()["data"] == {}


def test_a_finding_refuses_the_data_of_another_rule() -> None:
    with pytest.raises(ValueError, match="cannot carry SetDnsFaultTolerance"):
        Finding(rule_id="nic-dns-registration-disabled", host="ex01", subject="s", severity=Severity.HIGH,
                title="t", summary="s", evidence=(), fix_id=None,
                data=SetDnsFaultTolerance("c", "Normal", "Lenient"))  # fmt: skip


def test_a_rule_can_only_build_findings_with_the_data_it_declares() -> None:
    facts = host()
    wrong = SetDnsFaultTolerance("c", "Normal", "Lenient")
    with pytest.raises(TypeError, match="declares EnableRegistration data, not SetDnsFaultTolerance"):
        _common.finding(registration_rule.METADATA, facts, subject="s", summary="s", evidence=(), data=wrong)


GOOD = {"interface_index": 12, "interface_alias": "Ethernet0", "fqdn": "ex01.contoso.local"}


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        ({k: v for k, v in GOOD.items() if k != "fqdn"}, "fqdn", "missing"),
        ({**GOOD, "extra": 1}, "extra", "unknown key"),
        ({**GOOD, "interface_index": "12"}, "interface_index", "must be a whole number"),
        ({**GOOD, "interface_index": True}, "interface_index", "must be a whole number"),
        ({**GOOD, "interface_alias": ["Ethernet0"]}, "interface_alias", "must be a string"),
        ([GOOD], None, "must be a JSON object"),
    ],
)
def test_reading_is_strict_and_names_the_key(data: Any, key: str | None, problem: str) -> None:
    with pytest.raises(FactsFileError) as caught:
        data_from_dict("nic-dns-registration-disabled", data, source="plan.json")
    assert caught.value.key == key and problem in caught.value.problem


def test_reading_checks_lists_and_enums_item_by_item() -> None:
    good = SAMPLES[0][1]
    with pytest.raises(FactsFileError) as caught:
        data_from_dict("queue-dns-failure", {**good, "queues": ["EX01\\12", 3]}, source="p")
    assert caught.value.key == "queues[1]"
    with pytest.raises(FactsFileError) as caught:
        data_from_dict("queue-dns-failure", {**good, "scope": "everywhere"}, source="p")
    assert caught.value.key == "scope"
    assert "is not one of: internal, all-external, domain" in str(caught.value)
    (configure,) = [d for v, d in SAMPLES if isinstance(v, ConfigureTransportDns)]
    sides = dict(configure, sides=["external", "sideways"])
    with pytest.raises(FactsFileError) as caught:
        data_from_dict("transport-no-dns-configured", sides, source="p")
    assert caught.value.key == "sides[1]"


def test_a_rule_without_a_data_class_is_refused() -> None:
    with pytest.raises(FactsFileError, match="rule 'no-such-rule' has no data exfix can read"):
        data_from_dict("no-such-rule", GOOD, source="plan.json")


def test_the_data_list_is_checked() -> None:
    assert by_rule(FINDING_DATA) == DATA_BY_RULE

    @dataclass(frozen=True, slots=True)
    class Twin(FindingData):
        RULE: ClassVar[str] = "nic-dns-registration-disabled"
        x: int

    @dataclass(frozen=True)
    class Loose(FindingData):
        RULE: ClassVar[str] = "loose-rule"
        x: int

    @dataclass(frozen=True, slots=True)
    class Nameless(FindingData):
        x: int

    class Plain(FindingData):
        RULE: ClassVar[str] = "plain-rule"

    with pytest.raises(FindingDataError, match="two data classes: EnableRegistration and Twin"):
        by_rule((*FINDING_DATA, Twin))
    with pytest.raises(FindingDataError, match="Loose must be a frozen, slotted dataclass"):
        by_rule((Loose,))
    with pytest.raises(FindingDataError, match="Nameless names no rule"):
        by_rule((Nameless,))
    with pytest.raises(FindingDataError, match="Plain is not a FindingData dataclass"):
        by_rule((Plain,))


def test_the_data_of_one_subject_on_several_servers_merges_into_one_value() -> None:
    ex01 = AddSmartHostConnector("fabrikam.com", ("mx1.fabrikam.com",), ("203.0.113.10",), ("EX01\\12",),
                                 ("EX01",), "fabrikam.com smart host")  # fmt: skip
    ex02 = dataclasses.replace(ex01, queues=("EX02\\4", "EX01\\12"), source_transport_servers=("EX02",),
                               connector_name="other")  # fmt: skip
    assert merged([ex01, ex02]) == dataclasses.replace(
        ex01, queues=("EX01\\12", "EX02\\4"), source_transport_servers=("EX01", "EX02")
    )
    assert merged([ex01]) == ex01
    with pytest.raises(ValueError, match="different rules"):
        merged([ex01, DomainWithoutMailDns("fabrikam.com", ())])
    with pytest.raises(ValueError, match="nothing to merge"):
        merged([])
