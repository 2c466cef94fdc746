from __future__ import annotations

import types
from typing import Any

import pytest

from agent.model.findings import Severity
from agent.rules import registry
from agent.rules.metadata import Explains, MetadataError, RuleKind, RuleMetadata

EXPECTED_IDS = (
    "queue-dns-failure",
    "nic-dns-registration-disabled",
    "nic-external-dns-server",
    "transport-external-dns-unresolvable",
    "transport-internal-dns-misconfigured",
    "transport-no-dns-configured",
    "remote-domain-aaaa-broken",
    "remote-domain-no-mail-dns",
    "dns-server-unreachable",
    "dns-fault-tolerance",
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
    )
    base.update(changes)
    return RuleMetadata(**base)  # type: ignore[arg-type]


def fake_module(name: str = "agent.rules.fake_rule", **metadata: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(__name__=name, METADATA=meta(**metadata), evaluate=lambda facts: ())


def test_the_ten_rule_ids_are_the_output_contract() -> None:
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
    explains = (Explains("no-such-symptom", ("internal",)),)
    with pytest.raises(MetadataError, match="'no-such-symptom', which is no symptom rule"):
        registry.load_rules([*registry.RULE_MODULES, fake_module(explains=explains)])
    explains = (Explains("nic-external-dns-server", ("internal",)),)  # a cause, not a symptom
    with pytest.raises(MetadataError, match="which is no symptom rule"):
        registry.load_rules([*registry.RULE_MODULES, fake_module(explains=explains)])
    good = (Explains("queue-dns-failure", ("internal",)),)
    assert registry.load_rules([*registry.RULE_MODULES, fake_module(explains=good)])[-1].id == "fake-rule"


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
                "explains": (Explains("queue-dns-failure", ("domain",)),),
            },
            "a symptom explains nothing",
        ),
        ({"explains": (Explains("queue-dns-failure", ()),)}, "at no scope"),
    ],
)
def test_metadata_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        meta(**changes)


def test_metadata_to_dict() -> None:
    data = registry.rule("nic-dns-registration-disabled").metadata.to_dict()
    assert data["severity"] == "high" and data["fix_id"] == "enable-nic-dns-registration"
    assert "KB3007623" in data["references"]  # type: ignore[operator]
