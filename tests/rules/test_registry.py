from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from agent.model.facts import CollectionArea
from agent.model.finding_data import (
    DATA_BY_RULE,
    FINDING_DATA,
    EnableRegistration,
    FindingData,
    RemoteDomain,
    SymptomScope,
)
from agent.model.findings import Severity
from agent.rules import registry
from agent.rules.metadata import Explains, MetadataError, RuleKind, RuleMetadata


@dataclass(frozen=True, slots=True)
class FakeData(FindingData):
    RULE: ClassVar[str] = "fake-rule"

    server: str


@dataclass(frozen=True, slots=True)
class FakeDomainData(RemoteDomain):
    RULE: ClassVar[str] = "fake-rule"


# The shipped data classes, and the fake rule's.
WITH_FAKE = {**DATA_BY_RULE, "fake-rule": FakeData}
INTERNAL = (SymptomScope.INTERNAL,)

EXPECTED_IDS = (
    "queue-dns-failure",
    "nic-dns-registration-disabled",
    "server-a-record-wrong-nic",
    "nic-external-dns-server",
    "host-firewall-blocks-dns",
    "transport-external-dns-unresolvable",
    "transport-internal-dns-misconfigured",
    "transport-no-dns-configured",
    "remote-domain-aaaa-broken",
    "dns-client-cache-negative",
    "dns-fault-tolerance",
    "remote-domain-no-mail-dns",
    "dns-server-unreachable",
    "dns-server-intermittent",
    "edge-transport-config-malformed",
)


def meta(**changes: Any) -> RuleMetadata:
    base = dict(
        id="fake-rule",
        title="A fake rule",
        severity=Severity.LOW,
        kind=RuleKind.CAUSE,
        explanation="This rule exists only to prove that the registry checks what it loads.",
        references=("KB3007623",),
        fix_id="set-nic-dns-servers",
        data=FakeData,
        reads=(CollectionArea.NICS,),
    )
    base.update(changes)
    return RuleMetadata(**base)  # type: ignore[arg-type]


def fake_module(name: str = "agent.rules.fake_rule", **metadata: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(__name__=name, METADATA=meta(**metadata), evaluate=lambda facts: ())


def test_the_rule_ids_are_the_output_contract() -> None:
    assert tuple(rule.id for rule in registry.RULES) == EXPECTED_IDS
    assert set(registry.RULES_BY_ID) == set(EXPECTED_IDS)


def test_every_rule_module_is_named_for_its_id() -> None:
    for rule in registry.RULES:
        assert rule.module == f"agent.rules.{rule.id.replace('-', '_')}"


def test_only_causes_have_fixes() -> None:
    assert registry.rule("queue-dns-failure").metadata.fix_id is None
    assert registry.rule("dns-server-unreachable").metadata.fix_id is None
    assert registry.rule("remote-domain-aaaa-broken").metadata.fix_id == "add-smarthost-send-connector"


def test_a_good_fake_module_loads() -> None:
    loaded = registry.load_rule(fake_module())
    assert loaded.id == "fake-rule"


def test_id_and_module_name_must_agree() -> None:
    with pytest.raises(MetadataError, match="does not match the module name 'other_rule'"):
        registry.load_rule(fake_module(name="agent.rules.other_rule"))


def test_metadata_must_be_rule_metadata() -> None:
    bad = types.SimpleNamespace(
        __name__="agent.rules.fake_rule", METADATA={"id": "fake-rule"}, evaluate=print
    )
    with pytest.raises(MetadataError, match="METADATA is missing"):
        registry.load_rule(bad)


def test_evaluate_must_exist() -> None:
    bad = types.SimpleNamespace(__name__="agent.rules.fake_rule", METADATA=meta())
    with pytest.raises(MetadataError, match="evaluate"):
        registry.load_rule(bad)


def test_explains_must_name_a_symptom_rule() -> None:
    explains = (Explains("no-such-symptom", INTERNAL),)
    with pytest.raises(MetadataError, match="'no-such-symptom', which is no symptom rule"):
        registry.load_rules([*registry.RULE_MODULES, fake_module(explains=explains)], WITH_FAKE)
    explains = (Explains("nic-external-dns-server", INTERNAL),)  # a cause, not a symptom
    with pytest.raises(MetadataError, match="which is no symptom rule"):
        registry.load_rules([*registry.RULE_MODULES, fake_module(explains=explains)], WITH_FAKE)
    good = (Explains("queue-dns-failure", INTERNAL),)
    loaded = registry.load_rules([*registry.RULE_MODULES, fake_module(explains=good)], WITH_FAKE)
    assert loaded[-1].id == "fake-rule"


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(MetadataError, match="registered twice"):
        registry.load_rules([fake_module(), fake_module()])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Fake_Rule"}, "lower-case words"),
        ({"title": ""}, "title"),
        ({"explanation": "too short"}, "plain words"),
        ({"references": ()}, "at least one reference"),
        ({"references": ("see the wiki",)}, "neither KBnnnnnnn nor an https URL"),
        ({"references": ("http://example.com/insecure",)}, "neither KBnnnnnnn"),
        ({"fix_id": None}, "cause rule needs a fix id"),
        ({"kind": RuleKind.ADVISORY}, "advisory rule has no fix"),
        (
            {
                "fix_id": None,
                "kind": RuleKind.SYMPTOM,
                "explains": (Explains("queue-dns-failure", (SymptomScope.DOMAIN,)),),
            },
            "a symptom explains nothing",
        ),
        ({"explains": (Explains("queue-dns-failure", ()),)}, "at no scope"),
        ({"explains": (Explains("queue-dns-failure", ("internal",)),)}, "no SymptomScope"),
        ({"data": EnableRegistration}, "the data of rule 'nic-dns-registration-disabled', not of this one"),
        ({"data": dict}, "is not a FindingData class"),
        ({"reads": ()}, "reads no fact area"),
        ({"reads": ("nics",)}, "reads 'nics', which is not a CollectionArea"),
        (
            {"fix_id": None, "kind": RuleKind.ADVISORY, "other_fix_ids": ("x-y",)},
            "other fix ids without a fix id",
        ),
        ({"other_fix_ids": ("set-nic-dns-servers",)}, "both its fix id and another fix id"),
        ({"reads": (CollectionArea.NICS, CollectionArea.NICS)}, "reads an area twice"),
        (
            {"explains": (Explains("queue-dns-failure", INTERNAL, same_domain=True),)},
            "for the same domain, but its data names no domain",
        ),
    ],
)
def test_metadata_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        meta(**changes)


def test_metadata_to_dict() -> None:
    data = registry.rule("nic-dns-registration-disabled").metadata.to_dict()
    assert data["severity"] == "high" and data["fix_id"] == "enable-nic-dns-registration"
    assert "KB3007623" in data["references"]  # type: ignore[operator]
    assert data["reads"] == ["nics"]


def test_every_rule_reads_at_least_one_area_and_each_area_is_read() -> None:
    read = {area for rule in registry.RULES for area in rule.metadata.reads}
    used = {area for rule in registry.RULES for area in rule.metadata.reads_if_collected}
    assert all(rule.metadata.reads for rule in registry.RULES)
    assert read | used == set(CollectionArea)  # an area no rule reads would be collected for nothing
    # The firewall rules are evidence and the fix's input, not the verdict's (the contrast of
    # the probes is): their loss does not stop host-firewall-blocks-dns from being judged.
    firewall = registry.rule("host-firewall-blocks-dns").metadata
    assert CollectionArea.FIREWALL not in firewall.reads
    assert firewall.reads_if_collected == (CollectionArea.FIREWALL,)
    assert registry.rule("dns-fault-tolerance").metadata.reads == (CollectionArea.EDGE_CONFIG,)
    malformed = registry.rule("edge-transport-config-malformed")
    assert malformed.metadata.reads == (CollectionArea.EDGE_CONFIG_FILE,)


def test_a_same_domain_cause_with_domain_data_is_accepted() -> None:
    explains = (Explains("queue-dns-failure", INTERNAL, same_domain=True),)
    assert meta(data=FakeDomainData, explains=explains).data is FakeDomainData


def test_every_rule_declares_the_data_class_plan_json_decodes_with() -> None:
    assert {rule.id: rule.metadata.data for rule in registry.RULES} == dict(DATA_BY_RULE)
    assert len(FINDING_DATA) == len(registry.RULES)
    assert all(rule_id == cls.RULE for rule_id, cls in DATA_BY_RULE.items())


def test_a_rule_whose_data_class_is_not_listed_is_refused() -> None:
    with pytest.raises(MetadataError, match="FakeData, but the data class listed for it is none"):
        registry.load_rules([*registry.RULE_MODULES, fake_module()])
    other = {**WITH_FAKE, "fake-rule": FakeDomainData}
    with pytest.raises(MetadataError, match="the data class listed for it is FakeDomainData"):
        registry.load_rules([*registry.RULE_MODULES, fake_module()], other)


def test_a_listed_data_class_whose_rule_is_not_loaded_is_refused() -> None:
    with pytest.raises(MetadataError, match="FakeData names rule 'fake-rule', which is not loaded"):
        registry.load_rules(registry.RULE_MODULES, WITH_FAKE)
