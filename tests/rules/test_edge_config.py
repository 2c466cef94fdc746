"""edge-transport-config-malformed, and dns-fault-tolerance next to it, over plain facts."""

from __future__ import annotations

from agent.evaluate import judge
from agent.model.facts import AreaIssue, CollectionArea, EdgeConfigFileFacts, XmlSyntaxError
from agent.model.finding_data import MalformedEdgeConfig
from agent.rules import edge_transport_config_malformed as rule
from agent.rules.metadata import RuleKind
from support.facts_builders import EDGE_CONFIG, host, mapi_nic, replication_nic, values

CURLY = "    <add key=\u201dDnsFaultTolerance\u201d value=\u201dLenient\u201d />"
ERROR = XmlSyntaxError(line=25, column=14, message="not well-formed (invalid token)", text=CURLY)
ISSUE = AreaIssue(
    CollectionArea.EDGE_CONFIG,
    f"Get-Content: {EDGE_CONFIG}: not well-formed XML: line 25, column 14: not well-formed (invalid token)",
)


def test_a_malformed_file_is_a_finding_with_its_line_and_column() -> None:
    (finding,) = rule.evaluate(host(edge_file=EdgeConfigFileFacts(EDGE_CONFIG, ERROR), issues=(ISSUE,)))
    assert finding.rule_id == "edge-transport-config-malformed" and finding.subject == EDGE_CONFIG
    assert finding.summary == (
        f"{EDGE_CONFIG} is not well-formed XML at line 25, column 14 (not well-formed (invalid token)): the "
        "Microsoft Exchange Transport service cannot load it and will not start after its next restart"
    )
    (evidence,) = finding.evidence
    assert evidence.source == "Get-Content" and evidence.subject == EDGE_CONFIG
    assert dict(evidence.values) == {
        "line": 25, "column": 14, "XML error": "not well-formed (invalid token)", "text of the line": CURLY,
    }  # fmt: skip
    assert finding.data == MalformedEdgeConfig(EDGE_CONFIG, 25, 14, "not well-formed (invalid token)")
    assert "line=25" in values(finding) and "column=14" in values(finding)


def test_it_is_advice_with_the_sources_for_what_transport_does() -> None:
    meta = rule.METADATA
    assert meta.kind is RuleKind.ADVISORY and meta.fix_id is None and meta.severity.value == "high"
    assert any("ff985893" in r for r in meta.references)  # MSExchangeTransport 14004, AppConfigLoadFailed
    assert any("ee681659" in r for r in meta.references)  # read when the service starts
    assert "14004" in meta.explanation


def test_a_well_formed_file_or_one_not_read_is_no_finding() -> None:
    assert rule.evaluate(host(edge_file=EdgeConfigFileFacts(EDGE_CONFIG))) == ()
    assert rule.evaluate(host()) == ()


def test_beside_it_dns_fault_tolerance_is_not_judged_and_the_nic_still_is() -> None:
    facts = host(
        nics=(mapi_nic(register_this_connections_address=False), replication_nic()),
        edge_file=EdgeConfigFileFacts(EDGE_CONFIG, ERROR),
        issues=(ISSUE,),
    )
    judged = judge(facts)
    found = [f.rule_id for f in judged.findings]
    assert found == ["nic-dns-registration-disabled", "edge-transport-config-malformed"]
    (skipped,) = judged.not_judged
    assert (skipped.rule_id, skipped.areas) == ("dns-fault-tolerance", ("edge_config",))
    assert skipped.host == facts.host
    assert skipped.reason == (
        "it reads edge_config (the settings in EdgeTransport.exe.config), not collected on this host: "
        + ISSUE.reason
    )
