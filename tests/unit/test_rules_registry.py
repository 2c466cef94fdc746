from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest

from agent.model.findings import Severity
from agent.rules import registry
from agent.rules.metadata import FIXES, MetadataError, RuleKind, RuleMetadata

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
        fix_disrupts_mail_flow=True,
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


def test_fix_flags_follow_the_fix_table() -> None:
    for rule in registry.RULES:
        fix = rule.metadata.fix_id
        if fix is None:
            assert rule.metadata.fix_disrupts_mail_flow is False
        else:
            assert FIXES[fix].needs_transport_restart is rule.metadata.fix_disrupts_mail_flow
    assert registry.rule("remote-domain-aaaa-broken").metadata.fix_disrupts_mail_flow is False
    assert registry.rule("dns-fault-tolerance").metadata.fix_disrupts_mail_flow is True
    assert registry.rule("queue-dns-failure").metadata.fix_id is None
    assert registry.rule("dns-server-unreachable").metadata.fix_id is None


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


def test_unknown_fix_id_is_refused_even_if_metadata_was_forged() -> None:
    with pytest.raises(MetadataError, match="unknown fix id"):
        meta(fix_id="reboot-everything")
    # Bypass __post_init__ (as a hand-made object could): the loader still checks.
    forged = object.__new__(RuleMetadata)
    for field in dataclasses.fields(RuleMetadata):
        object.__setattr__(forged, field.name, getattr(meta(), field.name))
    object.__setattr__(forged, "fix_id", "reboot-everything")
    module = types.SimpleNamespace(__name__="agent.rules.fake_rule", METADATA=forged, evaluate=lambda f: ())
    with pytest.raises(MetadataError, match="unknown fix id 'reboot-everything'"):
        registry.load_rule(module)


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
        ({"fix_disrupts_mail_flow": False}, "needs a transport restart"),
        ({"fix_id": "add-smarthost-send-connector", "fix_disrupts_mail_flow": True}, "does not need"),
        ({"fix_id": None, "fix_disrupts_mail_flow": False}, "cause rule needs a fix id"),
        ({"kind": RuleKind.ADVISORY}, "advisory rule has no fix"),
        (
            {"fix_id": None, "kind": RuleKind.SYMPTOM, "fix_disrupts_mail_flow": True},
            "cannot have a disruptive fix",
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
